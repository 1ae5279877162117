"""Config files for fedimg-build pointed at the TLS Koji hub stand-in (real ssl_login)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

KSURL = "git+https://pagure.io/fedora-kickstarts.git?#main"
TREE = ("https://kojipkgs.fedoraproject.org/compose/rawhide/latest-Fedora-Rawhide/compose/"
        "Cloud/$arch/os/")

# The job from issue 6, verbatim.
WEEKLY = {
    "name": "cloud-base-rawhide-weekly", "schedule": "weekly",
    "image_name": "Fedora-Cloud-Base", "version": "Rawhide", "target": "f44",
    "distro": "Fedora-44", "ksurl": KSURL, "kickstart": "fedora-cloud-base.ks",
    "install_tree": TREE, "arches": ["x86_64", "aarch64"], "formats": ["raw-xz", "qcow2"],
    "repos": [], "scratch": True,
}
NIGHTLY = {**WEEKLY, "name": "cloud-base-rawhide-nightly", "schedule": "nightly",
           "image_name": "Fedora-Cloud-Base-Generic", "formats": ["qcow2"], "scratch": False}
MANUAL = {**WEEKLY, "name": "cloud-base-42-rc", "schedule": "manual", "version": "42",
          "target": "f42", "distro": "Fedora-42", "scratch": False,
          "repos": ["https://kojipkgs.fedoraproject.org/compose/42/latest/Everything/$arch/os/"]}
LIVEMEDIA = {"name": "workstation-live-nightly", "schedule": "nightly",
             "image_name": "Fedora-Workstation-Live", "version": "Rawhide", "target": "f44",
             "ksurl": KSURL, "kickstart": "fedora-live-workstation.ks",
             "install_tree": TREE.replace("Cloud", "Everything"), "arches": ["x86_64"],
             "formats": [], "method": "livemedia", "scratch": True}


def _toml(value: Any) -> str:
    # JSON strings, numbers, booleans and arrays of them are valid TOML
    return json.dumps(value)


def write_config(path: pathlib.Path, koji: Mapping[str, Any],
                 jobs: Sequence[Mapping[str, Any]]) -> pathlib.Path:
    lines = ["[koji]"] + [f"{k} = {_toml(v)}" for k, v in koji.items()]
    for job in jobs:
        lines += ["", "[[trigger.jobs]]"] + [f"{k} = {_toml(v)}" for k, v in job.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_config(koji_hub_tls, tmp_path) -> Callable[..., pathlib.Path]:
    """make_config(jobs=[...], user="releng", **koji_overrides) -> path of a fedimg TOML."""
    counter = iter(range(1, 1000))

    def _make(jobs: Sequence[Mapping[str, Any]] = (WEEKLY,), user: str = "releng",
              **koji: Any) -> pathlib.Path:
        settings = {
            "hub": koji_hub_tls.url, "topurl": koji_hub_tls.topurl, "auth": "ssl",
            "cert": koji_hub_tls.client_cert(user), "serverca": koji_hub_tls.ca_cert,
            "retries": 1, "retry_interval": 0, "timeout": 5,
        }
        settings.update(koji)
        return write_config(tmp_path / f"fedimg-{next(counter)}.toml", settings, jobs)

    return _make
