"""The demo's Azure and Google Cloud part: what the gallery and GCE stand-ins hold after the
candidate composes, read back from them and the emulators, checked against the report and the
site.

Each of the demo's production composes (standins.koji_service, POST /compose/<id>) carries an
Azure vhdfixed.xz and a GCE tar.gz per arch; the azure service makes an image version of each in
the stack's gallery, replicated to the gallery's region and the configured ones, and the gcp
service a GCE image in its family. Used by deploy/local/demo.py.
"""

from __future__ import annotations

from typing import Any

from reporter.outputs import latest
from standins import cloud_stack as cs
from standins import local_stack as st

WANT_REGIONS = sorted({cs.GALLERY_LOCATION, *cs.AZURE_REGIONS})


def _regions(version: dict[str, Any]) -> dict[str, str]:
    summary = version["properties"].get("replicationStatus", {}).get("summary", [])
    return {s["region"].replace(" ", "").lower(): s["state"] for s in summary}


def check(stack: st.Stack, composes: list[str], report: dict[str, Any],
          versions: dict[str, dict[str, Any]], images: dict[str, dict[str, Any]]) -> list[str]:
    """Every disagreement between the gallery, GCE, the staging areas, the report and the site
    about the Azure and GCE images of `composes`."""
    problems = []
    reported = [i for i in report.get("images", []) if i.get("compose_id") in composes]
    azure = [i for i in reported if i.get("cloud") == "Azure"]
    gce = [i for i in reported if i.get("cloud") == "GCE"]
    for kind, found in (("Azure", azure), ("GCE", gce)):
        if len(found) != len(composes) * len(st.ARCHES):
            problems.append(f"the report lists {len(found)} {kind} images of the candidates, "
                            f"not one per compose and arch")
    seen = set()
    for image in azure:
        entry = image.get("azure") or {}
        key = f"{entry.get('image_definition')}/{entry.get('image_version')}"
        seen.add(key)
        version = versions.get(key)
        if version is None:
            problems.append(f"{image['name']}: report says gallery version {key}, the gallery "
                            "has no such version")
            continue
        regions = _regions(version)
        if sorted(regions) != WANT_REGIONS or set(regions.values()) != {"Completed"}:
            problems.append(f"{key}: replicated {regions}, want Completed in {WANT_REGIONS}")
        if sorted(entry.get("regions") or {}) != WANT_REGIONS:
            problems.append(f"{image['name']}: report regions {sorted(entry.get('regions') or {})}"
                            f", want {WANT_REGIONS}")
        if entry.get("resource_id") != version["id"]:
            problems.append(f"{image['name']}: report resource id {entry.get('resource_id')}, "
                            f"gallery {version['id']}")
    problems += [f"gallery version {k} is not in the report" for k in sorted(set(versions) - seen)]
    seen = set()
    for image in gce:
        entry = image.get("gcp") or {}
        name = entry.get("image_name")
        seen.add(name)
        found = images.get(name)
        if found is None:
            problems.append(f"{image['name']}: report says GCE image {name}, GCE has none")
            continue
        if found.get("status") != "READY":
            problems.append(f"GCE image {name} is {found.get('status')}")
        if not found.get("family") or found.get("family") != entry.get("family"):
            problems.append(f"GCE image {name}: family {found.get('family')}, report "
                            f"{entry.get('family')}")
    problems += [f"GCE image {n} is not in the report" for n in sorted(set(images) - seen)]
    problems += [f"{left} is still staged" for left in cs.staging_left(stack)]
    problems += _check_site(stack, report, azure + gce)
    return problems


def _check_site(stack: st.Stack, report: dict[str, Any], images: list[dict]) -> list[str]:
    """The release page shows every Azure resource id and GCE image with its family; the
    locator shows the current Azure and GCE images."""
    problems = []
    pages = {}
    for image in images:
        page = stack.site / f"release-{image['release']}.html"
        if page not in pages:
            pages[page] = page.read_text() if page.exists() else ""
        text = pages[page]
        shown = ([f'data-copy="{rid}"' for rid in (image.get("azure") or {}).get(
                     "regions", {}).values() if rid]
                 + ([f'class="gce-image">{image["gcp"]["image_name"]}<',
                     f'class="gce-family">{image["gcp"]["family"]}<'] if image.get("gcp") else []))
        problems += [f"{page.name} does not show {s} of {image['name']}" for s in shown
                     if s not in text]
    locator = stack.site / "index.html"
    text = locator.read_text() if locator.exists() else ""
    for image in latest(report.get("images", []), by_cloud=True):
        want = (f"Azure: {image['azure']['image_definition']} {image['azure']['image_version']}"
                if image.get("azure") else
                f"Google Cloud: {image['gcp']['image_name']}" if image.get("gcp") else None)
        if want and want not in text:
            problems.append(f"the locator does not show {want!r}")
    return problems


def inventory(versions: dict[str, dict[str, Any]],
              images: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """What this run left in the gallery and GCE, to compare with the next run."""
    return {"azure": sorted(f"{k} {v['id']} " + ",".join(sorted(_regions(v)))
                            for k, v in versions.items()),
            "gce": sorted(f"{n} {i['id']} {i.get('family')}" for n, i in images.items())}


def summary_lines(stack: st.Stack, versions: dict[str, dict[str, Any]],
                  images: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"Azure gallery image versions (gallery {cs.GALLERY} at {cs.gallery_url(stack)}, "
             f"blobs staged in azurite):"]
    for key, version in sorted(versions.items()):
        regions = _regions(version)
        lines.append(f"  {key:40} " + " ".join(f"{r}:{s}" for r, s in sorted(regions.items())))
    lines.append(f"GCE images (project {cs.GCP_PROJECT} at {cs.gce_url(stack)}, archives staged "
                 f"in gs://{cs.GCP_BUCKET}):")
    for name, image in sorted(images.items()):
        lines.append(f"  {name:40} family {image.get('family')}  {image.get('status')}")
    return lines
