"""Target registry: target name -> handler, imported only when a process uses that target.

Lazy imports keep a downloads-only consumer from importing boto3 code paths it never runs, and
let each target live in its own package. A configured target whose module is missing is a
deployment error, reported once at start-up with the module it looked for.
"""

from __future__ import annotations

import importlib

from shared.errors import TargetUnavailable
from uploader.model import TargetHandler

TARGETS: dict[str, str] = {
    "aws": "uploader.targets.aws:publish_aws",
    "downloads": "uploader.targets.downloads:publish_downloads",
}


# Arches a target can take (a target not listed takes every arch). EC2 runs x86_64 and arm64
# (Fedora's aarch64) only; an i386 or ppc64le image still goes to the download server.
TARGET_ARCHES: dict[str, frozenset[str]] = {"aws": frozenset({"x86_64", "aarch64"})}


def targets_for(arch: str | None, names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The configured targets, in order, that can take an image of `arch`."""
    return tuple(n for n in names if n not in TARGET_ARCHES or arch in TARGET_ARCHES[n])


def get_handler(name: str) -> TargetHandler:
    """The handler of target `name`; TargetUnavailable naming what is missing."""
    try:
        spec = TARGETS[name]
    except KeyError:
        raise TargetUnavailable(
            f"unknown target {name!r} (known: {', '.join(sorted(TARGETS))})"
        ) from None
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise TargetUnavailable(
            f"target {name!r} is not available: cannot import {module_name} ({exc})"
        ) from exc
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise TargetUnavailable(f"target {name!r} is not available: {spec} is not defined")
    return handler


def get_handlers(names: list[str] | tuple[str, ...]) -> dict[str, TargetHandler]:
    """Handlers for every name, in order; raises on the first that is unavailable."""
    return {name: get_handler(name) for name in names}
