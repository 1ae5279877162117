"""Check what history claims about AMIs against EC2 itself (optional: ``reporter.check_amis``).

Anyone able to publish a ``fedimg.*`` message could put an AMI on the site, and nightly cleanup
deregisters AMIs long after their message. With the check on, EC2 is asked, per region and in
batches of ``BATCH`` ids (DescribeImages, filter image-id, owner ``reporter.aws_owner``,
deprecated AMIs included), which of the reported AMIs the configured account owns; those it
does not return are asked about once more without the owner, which tells an AMI of another
account from one that no longer exists. Then, per AMI:

- owned, public and available: kept; a deprecation time EC2 knows is added (``deprecated``);
- owned by another account, not public, or in another state (pending, failed, disabled): left
  off the report altogether, with one warning line each;
- gone (deregistered since its message): kept in images.json as ``{"ami", "state":
  "deregistered"}`` so the history stays explained, but left off the site and simplestreams.

EC2 failing to answer fails the run (RunError): a report that was asked to be checked must not
be published unchecked.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from shared.errors import RunError

log = logging.getLogger(__name__)

BATCH = 200  # values in one DescribeImages filter (EC2's limit)

ClientFor = Callable[[str], Any]  # region -> boto3 EC2 client


@dataclass
class Checked:
    """What the check did to one run's report."""

    checked: int = 0
    left_off: int = 0
    deregistered: int = 0
    deprecated: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"checked": self.checked, "left_off": self.left_off,
                "deregistered": self.deregistered, "deprecated": self.deprecated}


def ec2_clients(config: Any = None) -> ClientFor:
    """Region -> boto3 EC2 client with bounded retries and timeouts (boto3's credential chain)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10,
                 read_timeout=60) if config is None else config
    clients: dict[str, Any] = {}

    def client_for(region: str) -> Any:
        if region not in clients:
            clients[region] = session.client("ec2", region_name=region, config=cfg)
        return clients[region]

    return client_for


def _describe(ec2: Any, ids: list[str], owner: str | None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), BATCH):
        params: dict[str, Any] = {
            "Filters": [{"Name": "image-id", "Values": ids[i:i + BATCH]}],
            "IncludeDeprecated": True,
        }
        if owner is not None:
            params["Owners"] = [owner]
        for page in ec2.get_paginator("describe_images").paginate(**params):
            for image in page.get("Images", []):
                found[image["ImageId"]] = image
    return found


def verdicts(ec2: Any, region: str, amis: Iterable[str], owner: str) -> dict[str, dict]:
    """AMI id -> {"status": ok|foreign|private|state|gone, "owner", "deprecated"} for a region."""
    ids = sorted(set(amis))
    try:
        ours = _describe(ec2, ids, owner)
        others = _describe(ec2, [i for i in ids if i not in ours], None)
    except Exception as e:  # botocore's ClientError, BotoCoreError (connection, credentials)
        raise RunError(f"checking AMIs in {region} with EC2 failed: {type(e).__name__}: {e}") \
            from None
    out = {}
    for ami in ids:
        image = ours.get(ami) or others.get(ami)
        if image is None or image.get("State") == "deregistered":
            out[ami] = {"status": "gone"}
            continue
        status = ("foreign" if image.get("OwnerId") != owner
                  else "private" if not image.get("Public")
                  else "state" if image.get("State", "available") != "available" else "ok")
        out[ami] = {"status": status, "owner": image.get("OwnerId"),
                    "state": image.get("State"), "deprecated": _time(image.get("DeprecationTime"))}
    return out


def _time(value: Any) -> str | None:
    """EC2's DeprecationTime ("2024-05-01T00:00:00.000Z") as the report writes times."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(images: list[dict], owner: str, client_for: ClientFor) -> Checked:
    """Apply EC2's answers to the image records (in place); see the module docstring."""
    by_region: dict[str, set[str]] = {}
    for img in images:
        for region, entry in img["aws"].items():
            by_region.setdefault(region, set()).add(entry["ami"])
    answers = {region: verdicts(client_for(region), region, amis, owner)
               for region, amis in sorted(by_region.items())}
    done = Checked()
    for img in images:
        kept = {}
        for region, entry in img["aws"].items():
            done.checked += 1
            verdict = answers[region][entry["ami"]]
            status = verdict["status"]
            if status == "ok":
                if verdict["deprecated"]:
                    done.deprecated += 1
                    entry = {**entry, "deprecated": verdict["deprecated"]}
                kept[region] = entry
            elif status == "gone":
                done.deregistered += 1
                log.warning("AMI %s of %s in %s no longer exists (deregistered): off the site",
                            entry["ami"], img["name"], region)
                kept[region] = {**entry, "state": "deregistered"}
            else:
                done.left_off += 1
                why = {"foreign": f"is owned by {verdict['owner']}, not {owner}",
                       "private": "is not public",
                       "state": f"is {verdict['state']}"}[status]
                log.warning("AMI %s of %s in %s %s: left off the report", entry["ami"],
                            img["name"], region, why)
        img["aws"] = kept
    return done


def launchable(images: list[dict]) -> list[dict]:
    """The records without deregistered AMIs: what the site and simplestreams offer."""
    out = []
    for img in images:
        aws = {r: e for r, e in img["aws"].items() if e.get("state") != "deregistered"}
        out.append(img if len(aws) == len(img["aws"]) else {**img, "aws": aws})
    return out
