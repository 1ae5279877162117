"""images.json, latest.json and simplestreams from a fold state (docs/report.md, "Outputs").

Everything here is deterministic given the state, the source URL and the ``generated`` time, and
only images.json/latest.json and the HTML carry ``generated``: the simplestreams ``updated`` is the
time of the newest message read, so two runs over the same history write the same streams.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import json
from typing import Any

from reporter.fold import FoldState
from shared.images import CHANNELS, aws_arch, identify

REPORT_SCHEMA = "fedimg.report/1"
LATEST_SCHEMA = "fedimg.latest/1"
STREAM_PREFIX = "org.fedoraproject.cloud"
AWS_CONTENT_ID = f"{STREAM_PREFIX}:aws"
DOWNLOAD_CONTENT_ID = f"{STREAM_PREFIX}:download"
STREAMS_DIR = "streams/v1"


def dumps(data: Any, sort_keys: bool = False) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=sort_keys, ensure_ascii=False) + "\n").encode()


def history_block(state: FoldState, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "messages_read": state.read,
        "messages_skipped": state.skipped,
        "last_timestamp": state.last_timestamp,
    }


def images_json(images: list[dict], state: FoldState, source: str, generated: str,
                history: dict | None = None) -> dict:
    """images.json; ``history`` replaces history_block's (e.g. with the AMI check's counts)."""
    return {
        "schema": REPORT_SCHEMA,
        "generated": generated,
        "history": history_block(state, source) if history is None else history,
        "images": images,
    }


def _newest_key(img: dict) -> tuple:
    return (img["first_seen"], img["updated"], img["name"])


@functools.lru_cache(maxsize=65536)
def _name_says(name: str) -> tuple[str | None, str | None, str | None]:
    ident = identify(name)
    return ident.release, ident.subvariant, ident.arch


def reads_as_image_name(img: dict) -> bool:
    """True when the name alone says the image's release, subvariant and arch.

    Hints in a body can give any string an identity; only names that are image names by
    themselves may be offered as the "latest" image or a simplestreams version.
    """
    release, subvariant, arch = _name_says(img["name"])
    return (release, arch) == (img["release"], img["arch"]) and subvariant is not None


def latest(images: list[dict], by_cloud: bool = False) -> list[dict]:
    """The newest image (by first_seen, then updated, then name) per release x subvariant x arch
    x channel (x cloud with by_cloud, so an Azure image does not hide the AWS one); images whose
    channel is unknown are not "current" in any channel, nor are images whose name is no image
    name by itself (see reads_as_image_name)."""
    best: dict[tuple, dict] = {}
    for img in images:
        if img["channel"] is None or not reads_as_image_name(img):
            continue
        key = (img["release"], img["subvariant"], img["arch"], img["channel"])
        if by_cloud:
            key += (img["cloud"] or "",)
        if key not in best or _newest_key(img) > _newest_key(best[key]):
            best[key] = img
    return [best[k] for k in sorted(best, key=sort_key)]


def release_order(release: str) -> tuple:
    """Rawhide first, then numeric releases newest first."""
    return (0, 0) if release == "Rawhide" else (1, -int(release)) if release.isdigit() else (2, 0)


def sort_key(key: tuple) -> tuple:
    release, subvariant, arch, channel, *cloud = key
    rank = -CHANNELS.index(channel) if channel in CHANNELS else 1
    return (release_order(release), rank, subvariant, arch, *cloud)


def latest_json(images: list[dict], state: FoldState, source: str, generated: str,
                history: dict | None = None) -> dict:
    return {
        "schema": LATEST_SCHEMA,
        "generated": generated,
        "history": history_block(state, source) if history is None else history,
        "latest": latest(images),
        "latest_by_cloud": latest(images, by_cloud=True),
    }


# ---- simplestreams ------------------------------------------------------------------------------


def _rfc2822(ts: float | None) -> str:
    return email.utils.formatdate(ts or 0, usegmt=True)


def _version_name(img: dict) -> str:
    # version keys sort chronologically (simplestreams treats the greatest as newest)
    first = dt.datetime.strptime(img["first_seen"], "%Y-%m-%dT%H:%M:%SZ")
    return f"{first:%Y%m%d.%H%M%S}"


def aws_architecture(fedora_arch: str) -> str:
    """EC2's Architecture value, or the Fedora arch for one EC2 does not run (legacy history)."""
    try:
        return aws_arch(fedora_arch)
    except ValueError:
        return fedora_arch


def _product_name(img: dict) -> str:
    return (f"{STREAM_PREFIX}:{img['subvariant']}:{img['release']}:{img['arch']}:"
            f"{img['channel'] or 'unknown'}")


def streams(images: list[dict], state: FoldState) -> dict[str, dict]:
    """{relative path: document} of streams/v1: index:1.0 and two products:1.0 files.

    image-ids (AWS): one item per region with id (AMI), crsn (region), virt hvm, root_store ebs;
    image-downloads: one item per download file with url, size, sha256, ftype.
    Products carry arch, release, subvariant, channel (and label = channel) for sstream-query.
    """
    updated = _rfc2822(state.last_timestamp)
    aws_products: dict[str, dict] = {}
    dl_products: dict[str, dict] = {}
    regions: set[str] = set()
    for img in sorted(images, key=lambda i: (i["first_seen"], i["name"])):
        if not reads_as_image_name(img):
            continue
        base = {
            "arch": img["arch"], "release": img["release"], "subvariant": img["subvariant"],
            "channel": img["channel"] or "unknown", "os": "fedora",
        }
        if img["aws"]:
            prod = aws_products.setdefault(_product_name(img), {**base, "versions": {}})
            items = {}
            for region, entry in img["aws"].items():
                regions.add(region)
                items[region] = {
                    "id": entry["ami"], "crsn": region, "region": region,
                    "endpoint": f"https://ec2.{region}.amazonaws.com",
                    "virt": "hvm", "root_store": "ebs",
                    # EC2's own name for the arch (arm64 for aarch64), as EC2 tools filter by it
                    "architecture": aws_architecture(img["arch"]),
                }
            _add_version(prod, img, items)
        if img["downloads"]:
            prod = dl_products.setdefault(_product_name(img), {**base, "versions": {}})
            items = {
                # "url", not "path": simplestreams resolves path below the mirror, and the
                # files live on the download server
                d["format"]: {"ftype": d["format"], "url": d["url"], "size": d["size"],
                              "sha256": d["sha256"]}
                for d in img["downloads"]
            }
            _add_version(prod, img, items)

    files = {}
    index: dict[str, Any] = {}
    for content_id, datatype, products in (
        (AWS_CONTENT_ID, "image-ids", aws_products),
        (DOWNLOAD_CONTENT_ID, "image-downloads", dl_products),
    ):
        path = f"{STREAMS_DIR}/{content_id}.json"
        doc: dict[str, Any] = {
            "content_id": content_id, "datatype": datatype, "format": "products:1.0",
            "updated": updated, "products": dict(sorted(products.items())),
        }
        if datatype == "image-ids":
            doc["cloudname"] = "aws"
        files[path] = doc
        index[content_id] = {
            "datatype": datatype, "format": "products:1.0", "path": path, "updated": updated,
            "products": sorted(products),
            **({"cloudname": "aws", "clouds": [
                {"region": r, "endpoint": f"https://ec2.{r}.amazonaws.com"}
                for r in sorted(regions)]} if datatype == "image-ids" else {}),
        }
    files[f"{STREAMS_DIR}/index.json"] = {"format": "index:1.0", "updated": updated,
                                          "index": index}
    return files


def _add_version(prod: dict, img: dict, items: dict) -> None:
    name = _version_name(img)
    n = 1
    while name in prod["versions"]:  # two images of one product in the same second
        n += 1
        name = f"{_version_name(img)}.{n}"
    prod["versions"][name] = {
        "pubname": img["name"], "label": img["channel"] or "unknown",
        "official": "true" if img["official"] else "false", "items": items,
    }
