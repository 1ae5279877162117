"""images.json, latest.json and simplestreams from a fold state (docs/report.md, "Outputs").

Everything here is deterministic given the state, the source URL and the ``generated`` time, and
only images.json/latest.json and the HTML carry ``generated``: the simplestreams ``updated`` is the
time of the newest message read, so two runs over the same history write the same streams.
"""

from __future__ import annotations

import email.utils
import functools
import json
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any, TextIO

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


def aws_architecture(fedora_arch: str) -> str:
    """EC2's Architecture value, or the Fedora arch for one EC2 does not run (legacy history)."""
    try:
        return aws_arch(fedora_arch)
    except ValueError:
        return fedora_arch


def _product_name(img: dict) -> str:
    return (f"{STREAM_PREFIX}:{img['subvariant']}:{img['release']}:{img['arch']}:"
            f"{img['channel'] or 'unknown'}")


def stream_versions(img: dict) -> tuple[str, dict, dict | None, dict | None]:
    """(product name, product fields, AWS version, downloads version) of an image whose name
    reads as an image name; a version is None when the image has nothing of its kind."""
    base = {
        "arch": img["arch"], "release": img["release"], "subvariant": img["subvariant"],
        "channel": img["channel"] or "unknown", "os": "fedora",
    }
    aws = dl = None
    if img["aws"]:
        aws = {region: {
            "id": entry["ami"], "crsn": region, "region": region,
            "endpoint": f"https://ec2.{region}.amazonaws.com",
            "virt": "hvm", "root_store": "ebs",
            # EC2's own name for the arch (arm64 for aarch64), as EC2 tools filter by it
            "architecture": aws_architecture(img["arch"]),
        } for region, entry in img["aws"].items()}
    if img["downloads"]:
        aws_dl = {
            # "url", not "path": simplestreams resolves path below the mirror, and the
            # files live on the download server
            d["format"]: {"ftype": d["format"], "url": d["url"], "size": d["size"],
                          "sha256": d["sha256"]}
            for d in img["downloads"]
        }
        dl = aws_dl
    head = {"pubname": img["name"], "label": img["channel"] or "unknown",
            "official": "true" if img["official"] else "false"}
    return (_product_name(img), base, aws and {**head, "items": aws},
            dl and {**head, "items": dl})


_STREAMS = ((AWS_CONTENT_ID, "image-ids"), (DOWNLOAD_CONTENT_ID, "image-downloads"))


def streams(images: list[dict], state: FoldState) -> dict[str, dict]:
    """{relative path: document} of streams/v1: index:1.0 and two products:1.0 files.

    image-ids (AWS): one item per region with id (AMI), crsn (region), virt hvm, root_store ebs;
    image-downloads: one item per download file with url, size, sha256, ftype.
    Products carry arch, release, subvariant, channel (and label = channel) for sstream-query.
    """
    products: tuple[dict[str, dict], dict[str, dict]] = ({}, {})
    for img in sorted(images, key=lambda i: (i["first_seen"], i["name"])):
        if not reads_as_image_name(img):
            continue
        name, base, *versions = stream_versions(img)
        for kind, version in zip(products, versions, strict=True):
            if version is not None:
                prod = kind.setdefault(name, {**base, "versions": {}})
                prod["versions"][_version_key(prod["versions"], img["first_seen"])] = version
    regions = {r for prod in products[0].values() for v in prod["versions"].values()
               for r in v["items"]}
    updated = _rfc2822(state.last_timestamp)
    files = {}
    for (content_id, datatype), prods in zip(_STREAMS, products, strict=True):
        files[f"{STREAMS_DIR}/{content_id}.json"] = {
            **_stream_head(content_id, datatype, updated), "products": dict(sorted(prods.items()))}
    files[f"{STREAMS_DIR}/index.json"] = _stream_index(
        [sorted(p) for p in products], regions, updated)
    return files


def _stream_head(content_id: str, datatype: str, updated: str) -> dict[str, Any]:
    return {"content_id": content_id, "datatype": datatype, "format": "products:1.0",
            "updated": updated, **({"cloudname": "aws"} if datatype == "image-ids" else {})}


def _stream_index(products: list[list[str]], regions: Iterable[str], updated: str) -> dict:
    index: dict[str, Any] = {}
    for (content_id, datatype), names in zip(_STREAMS, products, strict=True):
        index[content_id] = {
            "datatype": datatype, "format": "products:1.0",
            "path": f"{STREAMS_DIR}/{content_id}.json", "updated": updated, "products": names,
            **({"cloudname": "aws", "clouds": [
                {"region": r, "endpoint": f"https://ec2.{r}.amazonaws.com"}
                for r in sorted(regions)]} if datatype == "image-ids" else {}),
        }
    return {"format": "index:1.0", "updated": updated, "index": index}


def _version_key(versions: Container[str], first_seen: str) -> str:
    # version keys sort chronologically (simplestreams treats the greatest as newest):
    # 2024-09-12T01:55:05Z -> 20240912.015505
    base = name = (f"{first_seen[0:4]}{first_seen[5:7]}{first_seen[8:10]}."
                   f"{first_seen[11:13]}{first_seen[14:16]}{first_seen[17:19]}")
    n = 1
    while name in versions:  # two images of one product in the same second
        n += 1
        name = f"{base}.{n}"
    return name


# ---- streamed writing: documents too big to hold in memory at Fedora's scale -------------------


def write_images_json(out: TextIO, history: dict, generated: str, records: Iterable[str]) -> None:
    """images.json with one image entry (``records``: JSON texts, in name order) per line."""
    head = json.dumps({"schema": REPORT_SCHEMA, "generated": generated, "history": history},
                      ensure_ascii=False)
    out.write(head[:-1] + ',\n "images": [')
    sep = "\n"
    for record in records:
        out.write(sep)
        out.write(record)
        sep = ",\n"
    out.write("\n]}\n")


def write_streams(root: Path, store: Any, last_timestamp: float | None) -> None:
    """streams/v1 from the store (reporter.store), one version per line: the same documents
    as ``streams`` over the same images."""
    updated = _rfc2822(last_timestamp)
    names: list[list[str]] = []
    (root / STREAMS_DIR).mkdir(parents=True, exist_ok=True)
    for (content_id, datatype), column in zip(_STREAMS, ("aws_version", "dl_version"),
                                              strict=True):
        names.append([])
        head = json.dumps(_stream_head(content_id, datatype, updated), ensure_ascii=False)
        with open(root / STREAMS_DIR / f"{content_id}.json", "w", encoding="utf-8") as out:
            out.write(head[:-1] + ', "products": {')
            product = None
            versions: set[str] = set()
            for name, base, first, version in store.db.execute(
                    f"SELECT product, sbase, first_seen, {column} FROM images "  # noqa: S608
                    f"WHERE {column} IS NOT NULL ORDER BY product, first_seen, name"):
                if name != product:
                    out.write("}},\n" if product is not None else "\n")
                    out.write(f"{json.dumps(name, ensure_ascii=False)}: {base[:-1]}, "
                              '"versions": {\n')
                    product, versions = name, set()
                    names[-1].append(name)
                else:
                    out.write(",\n")
                key = _version_key(versions, first)
                versions.add(key)
                out.write(f"{json.dumps(key)}: {version}")
            out.write("}}\n}}\n" if product is not None else "}}\n")
    regions = [r for (r,) in store.db.execute(
        "SELECT DISTINCT value FROM images, json_each(images.regions) "
        "WHERE aws_version IS NOT NULL")]
    (root / STREAMS_DIR / "index.json").write_bytes(
        dumps(_stream_index(names, regions, updated)))
