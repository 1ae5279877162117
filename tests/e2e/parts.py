"""Which parts of the pipeline this checkout has; shared by the e2e tests and ``make demo``.

The end-to-end flow joins parts built separately. Where one has not landed yet, the demo and the
tests fail with one line naming it, instead of faking it or skipping.
"""

from __future__ import annotations

import importlib
import pathlib
import pkgutil

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# (module that must provide it, attribute, who builds it)
PARTS = [
    ("uploader.consumer", "Uploader", "intake + consumer (issue 3)"),
    ("uploader.targets.downloads", "publish_downloads", "download artifacts (issue 4)"),
    ("uploader.targets.aws", "publish_aws", "AWS publishing (issue 7)"),
]
# CLIs that started as skeletons printing "not implemented yet"
SKELETONS = [
    ("trigger/cli.py", "fedimg-build (issue 6)"),
    ("reporter/cli.py", "fedimg-report (issue 5)"),
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
    for path, who in SKELETONS:
        if "not implemented yet" in (REPO_ROOT / path).read_text():
            out.append(f"{who}: {path} is still the skeleton")
    return out
