"""Which parts of the pipeline this checkout has; asked by the end-to-end tests and ``make demo``.

The end-to-end flow joins parts built separately. Where one is missing, the demo and the tests
fail with one line naming it, instead of faking it or skipping.
"""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import pkgutil

# (module that must provide it, attribute, the part)
PARTS = [
    ("uploader.consumer", "Uploader", "intake + consumer"),
    ("uploader.targets.downloads", "publish_downloads", "download artifacts"),
    ("uploader.targets.aws", "publish_aws", "AWS publishing"),
    ("uploader.targets.containers", "publish_containers", "container registries"),
    ("uploader.targets.azure", "publish_azure", "Azure Compute Gallery"),
    ("uploader.targets.gcp", "publish_gcp", "Google Compute Engine"),
]
# CLIs that started as skeletons printing "not implemented yet"
SKELETONS = [
    ("trigger.cli", "fedimg-build"),
    ("reporter.cli", "fedimg-report"),
]


def _provides(module: str, attr: str) -> bool:
    mod = importlib.import_module(module)
    if hasattr(mod, attr):
        return True
    for info in pkgutil.walk_packages(getattr(mod, "__path__", []), module + "."):
        try:
            if hasattr(importlib.import_module(info.name), attr):
                return True
        except ImportError:
            continue
    return False


def missing_parts() -> list[str]:
    """One line per part of the pipeline that this checkout does not have yet."""
    out = []
    for module, attr, who in PARTS:
        try:
            if not _provides(module, attr):
                out.append(f"{who}: no {attr} in {module}")
        except ImportError as exc:
            out.append(f"{who}: {module} cannot be imported ({exc})")
    for module, who in SKELETONS:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            out.append(f"{who}: {module} cannot be found")
        elif "not implemented yet" in pathlib.Path(spec.origin).read_text():
            out.append(f"{who}: {module} is still the skeleton")
    return out
