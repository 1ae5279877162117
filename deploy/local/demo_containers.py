"""The demo's container part: a compose with one small container image per arch, pushed by the
containers uploader to the stack's registry, checked against what the registry and the report say.

Used by deploy/local/demo.py (step "compose with container images"); the compose is
Fedora-43-<today>.n.0, so a second `make demo` the same day re-announces the same compose and
must push nothing.
"""

from __future__ import annotations

import datetime
from typing import Any

import requests

from standins import local_stack as st
from standins.registry import RegistryClient

REPOSITORY = "fedora"  # Container_Base's repository (uploader.targets.containers defaults)


class ContainerDemoFailed(RuntimeError):
    """One line for the operator."""


def compose_id(date: datetime.date) -> str:
    return f"Fedora-{st.LATEST_RELEASE}-{date:%Y%m%d}.n.0"


def make_compose(stack: st.Stack, compose: str) -> dict[str, Any]:
    """The Koji stand-in writes the compose below its /kojifiles/compose and announces it."""
    resp = requests.post(f"{stack.koji_control}/compose/{compose}", timeout=120)
    if resp.status_code != 200:
        raise ContainerDemoFailed(f"the Koji stand-in could not make compose {compose}: "
                                  f"{resp.text}")
    return resp.json()


def registry(stack: st.Stack) -> RegistryClient:
    return RegistryClient(stack.registry_dir, stack.registry_host)


def registry_state(stack: st.Stack) -> dict[str, str]:
    """tag -> digest of every tag of the demo repository."""
    client = registry(stack)
    return {tag: client.manifest(REPOSITORY, tag)[0] for tag in client.tags(REPOSITORY)}


def check(stack: st.Stack, compose: str, report: dict[str, Any]) -> list[str]:
    """Every disagreement between the registry and the report about the compose's images."""
    client = registry(stack)
    problems = []
    version = compose.split("-", 2)[2]
    compose_tag = f"{st.LATEST_RELEASE}-{version}"
    found = client.manifest(REPOSITORY, compose_tag)
    if found is None:
        return [f"{stack.registry_host}/{REPOSITORY} has no tag {compose_tag}"]
    list_digest, index = found
    platforms = sorted(m["platform"]["architecture"] for m in index["manifests"])
    if platforms != ["amd64", "arm64"]:
        problems.append(f"the manifest list names {platforms}, not amd64 and arm64")
    for tag in (st.LATEST_RELEASE, "latest"):
        at = client.manifest(REPOSITORY, tag)
        if at is None or at[0] != list_digest:
            problems.append(f"{REPOSITORY}:{tag} does not name the list of {compose}")
    images = [i for i in report.get("images", []) if i.get("compose_id") == compose]
    if sorted(i.get("arch") for i in images) != sorted(st.ARCHES):
        problems.append(f"the report lists {len(images)} image(s) of {compose}, not one per arch")
    for image in images:
        entries = [c for c in image.get("containers") or []
                   if c.get("registry") == stack.registry_host]
        if len(entries) != 1:
            problems.append(f"{image['name']}: {len(entries)} entries for the registry")
            continue
        entry = entries[0]
        arch_tag = client.manifest(REPOSITORY, f"{compose_tag}-{image['arch']}")
        if arch_tag is None or entry.get("digest") != arch_tag[0]:
            problems.append(f"{image['name']}: report digest {entry.get('digest')}, registry "
                            f"{arch_tag and arch_tag[0]}")
        if entry.get("manifest_list") != list_digest:
            problems.append(f"{image['name']}: report list {entry.get('manifest_list')}, "
                            f"registry {list_digest}")
        if sorted(entry.get("tags") or []) != sorted([compose_tag, st.LATEST_RELEASE, "latest"]):
            problems.append(f"{image['name']}: report tags {entry.get('tags')}")
    page = stack.site / f"release-{st.LATEST_RELEASE}.html"
    html = page.read_text() if page.exists() else ""
    if f"{stack.registry_host}/{REPOSITORY}:latest" not in html:
        problems.append(f"{page} does not show {stack.registry_host}/{REPOSITORY}:latest")
    return problems


def summary_lines(stack: st.Stack, compose: str) -> list[str]:
    state = registry_state(stack)
    lines = [f"Container images of {compose} (registry {stack.registry_host}, "
             f"repository {REPOSITORY}):"]
    for tag, digest in sorted(state.items()):
        lines.append(f"  {tag:32} {digest}")
    return lines
