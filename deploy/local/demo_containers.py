"""The demo's container part: what the registry holds after the candidate composes, checked
against the report and the site.

Each of the demo's production composes (standins.koji_service, POST /compose/<id>) carries one
small Container_Base image per arch; the containers service pushes them to the stack's registry.
After both candidates, every compose has its own tag naming its two-arch manifest list, and the
moving tags (the release and `latest`) name the newest candidate's. Used by deploy/local/demo.py.
"""

from __future__ import annotations

from typing import Any

from standins import local_stack as st
from standins.registry import RegistryClient

REPOSITORY = "fedora"  # Container_Base's repository (uploader.targets.containers defaults)
PLATFORMS = ["amd64", "arm64"]  # of standins.local_stack.ARCHES


def registry(stack: st.Stack) -> RegistryClient:
    return RegistryClient(stack.registry_dir, stack.registry_host)


def registry_state(stack: st.Stack) -> dict[str, str]:
    """tag -> digest of every tag of the demo repository."""
    client = registry(stack)
    return {tag: client.manifest(REPOSITORY, tag)[0] for tag in client.tags(REPOSITORY)}


def _compose_tag(compose_id: str) -> str:
    release, version = compose_id.split("-", 2)[1:]
    return f"{release.lower()}-{version}"


def check(stack: st.Stack, composes: list[str], report: dict[str, Any]) -> list[str]:
    """Every disagreement between the registry, the report and the site about the container
    images of `composes` (oldest first)."""
    client = registry(stack)
    problems = []
    lists = {}
    for compose in composes:
        found = client.manifest(REPOSITORY, _compose_tag(compose))
        if found is None:
            problems.append(f"{stack.registry_host}/{REPOSITORY} has no tag "
                            f"{_compose_tag(compose)}")
            continue
        lists[compose], index = found
        platforms = sorted(m["platform"]["architecture"] for m in index["manifests"])
        if platforms != PLATFORMS:
            problems.append(f"the manifest list of {compose} names {platforms}")
    newest = composes[-1]
    for tag in (st.LATEST_RELEASE, "latest"):
        at = client.manifest(REPOSITORY, tag)
        if at is None or at[0] != lists.get(newest):
            problems.append(f"{REPOSITORY}:{tag} does not name the list of {newest}")
    for compose in composes:
        want_tags = [_compose_tag(compose)] + (
            [st.LATEST_RELEASE, "latest"] if compose == newest else [])
        problems += _check_images(stack, client, compose, report, lists.get(compose),
                                  sorted(want_tags))
    locator = stack.site / "index.html"
    page = locator.read_text() if locator.exists() else ""
    if f"{stack.registry_host}/{REPOSITORY}:" not in page:
        problems.append(f"{locator} shows no {stack.registry_host}/{REPOSITORY} tag")
    return problems


def _check_images(stack: st.Stack, client: RegistryClient, compose: str, report: dict[str, Any],
                  list_digest: str | None, want_tags: list[str]) -> list[str]:
    problems = []
    images = [i for i in report.get("images", []) if i.get("compose_id") == compose
              and i.get("subvariant") == "Container_Base"]
    if sorted(i.get("arch") for i in images) != sorted(st.ARCHES):
        return [f"the report lists {len(images)} container image(s) of {compose}, not one per "
                "arch"]
    for image in images:
        entries = [c for c in image.get("containers") or []
                   if c.get("registry") == stack.registry_host]
        if len(entries) != 1:
            problems.append(f"{image['name']}: {len(entries)} entries for the registry")
            continue
        entry = entries[0]
        arch_tag = client.manifest(REPOSITORY, f"{_compose_tag(compose)}-{image['arch']}")
        if arch_tag is None or entry.get("digest") != arch_tag[0]:
            problems.append(f"{image['name']}: report digest {entry.get('digest')}, registry "
                            f"{arch_tag and arch_tag[0]}")
        if entry.get("manifest_list") != list_digest:
            problems.append(f"{image['name']}: report list {entry.get('manifest_list')}, "
                            f"registry {list_digest}")
        if sorted(entry.get("tags") or []) != want_tags:
            problems.append(f"{image['name']}: report tags {entry.get('tags')}, want "
                            f"{want_tags}")
    return problems


def summary_lines(stack: st.Stack) -> list[str]:
    lines = [f"Container images (registry {stack.registry_host}, repository {REPOSITORY}):"]
    for tag, digest in sorted(registry_state(stack).items()):
        lines.append(f"  {tag:24} {digest}")
    return lines
