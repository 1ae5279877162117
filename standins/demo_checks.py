"""What the demo checks after a run: the report against what AWS, Glance and the downloads hold.

``deploy/local/demo.py`` runs the pipeline; these functions read the moto server, the Glance
clouds and the download directory back, compare them with images.json, and check that the site
shows what the demo made (a locator with every channel, a history page with earlier images,
valid feeds).
"""

from __future__ import annotations

import collections
import pathlib
import xml.etree.ElementTree as ET
from typing import Any

from reporter.outputs import latest
from shared.files import sha256_file
from standins import local_stack as st
from standins.pipeline_config import REGIONS


def aws_images(stack: st.Stack) -> dict[str, list[dict[str, Any]]]:
    """region -> the AMIs our account owns there (straight from the moto server)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="demo", aws_secret_access_key="demo")
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                 read_timeout=30)
    out = {}
    for region in REGIONS:
        ec2 = session.client("ec2", region_name=region, endpoint_url=stack.moto_url, config=cfg)
        out[region] = ec2.describe_images(Owners=["self"])["Images"]
    return out


def glance_images(stack: st.Stack) -> dict[str, list[dict[str, Any]]]:
    """cloud -> every image record its Glance holds (straight from the glance-api)."""
    import requests

    out = {}
    for cloud, url in stack.glance_urls.items():
        resp = requests.get(f"{url}/v2/images", params={"visibility": "all", "limit": 1000},
                            timeout=30)
        resp.raise_for_status()
        out[cloud] = resp.json()["images"]
    return out


def check_glance(report: dict[str, Any], found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every disagreement between the report's Glance ids and the clouds (empty: none): one
    active image per name and cloud, nothing half uploaded, each one in the report."""
    problems = []
    reported = {(c, (v or {}).get("image_id")) for i in report.get("images", [])
                for c, v in (i.get("openstack") or {}).items()}
    for cloud, images in found.items():
        per_name = collections.Counter(i["name"] for i in images)
        problems += [f"{cloud}: {n} Glance images named {k}" for k, n in per_name.items() if n > 1]
        for image in images:
            if image["status"] != "active":
                problems.append(f"{cloud}: {image['id']} ({image['name']}) is {image['status']}")
            elif (cloud, image["id"]) not in reported:
                problems.append(f"{cloud}: {image['id']} ({image['name']}) is not in the report")
    real = {(c, i["id"]) for c, images in found.items() for i in images}
    problems += [f"{c}: report says {i}, Glance has no such image" for c, i in reported - real]
    return problems


def download_files(stack: st.Stack) -> dict[str, pathlib.Path]:
    """relative path -> file, for every file under the download destination."""
    root = stack.downloads
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def check(stack: st.Stack, report: dict[str, Any], amis: dict[str, list[dict[str, Any]]],
          files: dict[str, pathlib.Path]) -> list[str]:
    """Every disagreement between the report, AWS and the download directory (empty: none)."""
    problems = []
    images = report.get("images", [])
    names = collections.Counter(i.get("name") for i in images)
    problems += [f"report lists image {n} {c} times" for n, c in names.items() if c > 1]
    # AWS: exactly one AMI per image name per region, and the report names exactly those.
    reported = {(r, (v or {}).get("ami")) for i in images for r, v in (i.get("aws") or {}).items()}
    for region, found in amis.items():
        per_name = collections.Counter(a.get("Name") for a in found)
        problems += [f"{region}: {c} AMIs named {n}" for n, c in per_name.items() if c > 1]
        for ami in found:
            if (region, ami["ImageId"]) not in reported:
                problems.append(f"{region}: {ami['ImageId']} ({ami.get('Name')}) is not in the "
                                "report")
    real = {(r, a["ImageId"]) for r, found in amis.items() for a in found}
    problems += [f"{r}: report says {a}, AWS has no such AMI" for r, a in reported - real]
    # Downloads: every reported file exists with that size and sha256; no unreported image file.
    base = None
    for image in images:
        for d in image.get("downloads") or []:
            url = d.get("url", "")
            rel = url.split("/downloads/", 1)[-1] if "/downloads/" in url else None
            path = files.get(rel) if rel else None
            if path is None:
                problems.append(f"report lists {url}, which is not in {stack.downloads}")
                continue
            base = base or url[: -len(rel)]
            if d.get("size") is not None and d["size"] != path.stat().st_size:
                problems.append(f"{rel}: report size {d['size']}, file {path.stat().st_size}")
            if d.get("sha256") and d["sha256"] != sha256_file(path):
                problems.append(f"{rel}: report sha256 differs from the file's")
    listed = {d.get("url", "").split("/downloads/", 1)[-1]
              for i in images for d in (i.get("downloads") or [])}
    for rel in files:
        if "CHECKSUM" not in rel and rel not in listed:
            problems.append(f"{rel} is in the download directory but not in the report")
    return problems


def inventory(amis: dict[str, list[dict[str, Any]]], files: dict[str, pathlib.Path],
              glance: dict[str, list[dict[str, Any]]],
              tags: dict[str, str] | None = None) -> dict[str, Any]:
    """What this run left behind (AMIs, files, Glance images, registry tag -> digest), to
    compare with the next run on the same stack."""
    return {"amis": sorted(f"{r} {a.get('Name')} {a['ImageId']}" for r, found in amis.items()
                           for a in found),
            "files": sorted(f"{rel} {sha256_file(p)}" for rel, p in files.items()),
            "glance": sorted(f"{c} {i['name']} {i['id']}" for c, images in glance.items()
                             for i in images),
            "tags": sorted(f"{tag} {digest}" for tag, digest in (tags or {}).items())}


def compare(previous: dict[str, Any] | None, now: dict[str, Any], run_no: int) -> str:
    if previous is None:
        return "First run on this stack: run `make demo` again to see a repeated announcement " \
               "change nothing."
    if previous == now:
        return (f"Same {len(now['amis'])} AMIs, {len(now['files'])} files (same bytes), "
                f"{len(now['glance'])} Glance images, {len(now['tags'])} registry tags (same "
                f"digests), {len(now.get('azure', []))} Azure gallery versions and "
                f"{len(now.get('gce', []))} GCE images as run {run_no - 1}: the repeated "
                "announcement changed nothing.")
    every = ("amis", "files", "glance", "tags", "azure", "gce")
    added = sorted({x for k in every for x in now.get(k, [])}
                   - {x for k in every for x in previous.get(k, [])})
    return f"Changed since run {run_no - 1}: {', '.join(added) or 'items removed'}"



ATOM = "{http://www.w3.org/2005/Atom}"
CHANNEL_SECTIONS = ("release", "candidate", "weekly", "nightly")


def check_site(site: pathlib.Path, report: dict[str, Any]) -> tuple[list[str], str | None]:
    """(problems, the history page with the most images) of the site the report wrote: the
    locator has a row per image and region and a section per channel, some family's history
    page shows at least two images, and every feed has the elements Atom requires."""
    problems = []
    index = (site / "index.html").read_text()
    for channel in CHANNEL_SECTIONS:
        if f'id="channel-{channel}"' not in index:
            problems.append(f"the locator has no {channel} section")
    rows = index.count("<tr data-release=")
    want = sum(max(1, len(i["aws"])) for i in latest(report["images"], by_cloud=True))
    if rows != want:
        problems.append(f"the locator has {rows} rows, the current images need {want}")
    pages = {p: p.read_text().count('<tr data-name="') for p in sorted(site.glob("history/*"))}
    # a nightly family first: the page the demo points at shows two nights of one image (other
    # families, candidates in several clouds or registries, may have more rows)
    deepest = max(pages, key=lambda p: ("nightly" in p.name, pages[p]), default=None)
    if deepest is None or pages[deepest] < 2:
        problems.append("no history page shows two images of one family")
    for feed in sorted(site.glob("feeds/*.atom")):
        try:
            root = ET.parse(feed).getroot()
        except ET.ParseError as exc:
            problems.append(f"{feed.name} is not XML: {exc}")
            continue
        needed = [root.find(ATOM + t) for t in ("id", "title", "updated")]
        entries = root.findall(ATOM + "entry")
        if root.tag != ATOM + "feed" or any(n is None or not n.text for n in needed) or any(
                e.find(ATOM + "id") is None or e.find(ATOM + "link") is None for e in entries):
            problems.append(f"{feed.name} lacks an element Atom requires")
    if len(list(site.glob("feeds/*.atom"))) != 1 + len(CHANNEL_SECTIONS):
        problems.append("the site does not have a feed for all and one per channel")
    return problems, None if deepest is None else str(deepest.relative_to(site))

