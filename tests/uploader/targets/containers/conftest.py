"""Fixtures for the containers target: composes whose images.json (shaped like Fedora 43's real
one) lists small real container archives served by the Koji stand-in's file server, fedimg
configs naming real registries, and a runner of the uploader's own pipeline."""

from __future__ import annotations

import copy
import json
import pathlib
import re
from collections.abc import Callable
from typing import Any

import pytest

from shared.config import Config, parse_config
from standins.container_archives import ContainerArchive, make_container_archive
from standins.registry import LocalRegistry
from tests.uploader.conftest import REPO_ROOT, config_dict, serve_compose
from tests.uploader.targets.downloads.conftest import Recorder
from uploader.intake.route import Request, find_images
from uploader.pipeline import ImageReport, make_clients, process_images
from uploader.targets import get_handler

F43 = REPO_ROOT / "tests" / "data" / "real" / "composes" / "Fedora-43-20251023.0.json"
_COMPOSE = re.compile(r"Fedora-(?P<rel>\d+|Rawhide)-(?P<date>\d{8})(?P<kind>\.n)?\.(?P<respin>\d+)")


def compose_images_json(compose_id: str, arches: list[str],
                        subvariants: tuple[str, ...] = ("Container_Base",),
                        image_type: str = "container") -> dict:
    """images.json of a compose with the container images of `arches`, made from Fedora 43's
    real Container entries (their names, paths and fields), renamed for `compose_id`."""
    real = json.loads(F43.read_text())["images_json"]
    m = _COMPOSE.fullmatch(compose_id)
    release, date = m["rel"], m["date"]
    label = "1.6" if compose_id == "Fedora-43-20251023.0" else \
        f"{date}{m['kind'] or ''}.{m['respin']}"
    images: list[dict] = []
    for entry in real["payload"]["images"]["Container"]["x86_64"]:
        if entry["subvariant"] not in subvariants:
            continue
        for arch in arches:
            new = copy.deepcopy(entry)
            new["arch"], new["type"] = arch, image_type
            new["path"] = entry["path"].replace("x86_64", arch).replace("-43-1.6.",
                                                                        f"-{release}-{label}.")
            images.append(new)
    payload = {"compose": {"date": date, "id": compose_id, "respin": int(m["respin"]),
                           "type": "nightly" if m["kind"] else "production"},
               "images": {"Container": {a: [i for i in images if i["arch"] == a]
                                        for a in arches}}}
    return {"header": real["header"], "payload": payload}


class Compose:
    """A compose served below compose.base_url of the Koji stand-in."""

    def __init__(self, hub: Any, compose_id: str, images_json: dict,
                 archives: dict[str, ContainerArchive]) -> None:
        self.compose_id = compose_id
        self.images_json = images_json
        self.archives = archives  # by arch
        release = compose_id.split("-")[1].lower()
        files = {}
        for entries in images_json["payload"]["images"]["Container"].values():
            for entry in entries:
                files[entry["path"]] = archives[entry["arch"]].path
        self.url = serve_compose(hub, images_json, f"{release}/{compose_id}", files)


@pytest.fixture
def make_compose(koji_hub: Any, tmp_path: pathlib.Path) -> Callable[..., Compose]:
    """make_compose(compose_id, arches, kind="oci", seed=0) -> a served Compose."""

    def _make(compose_id: str, arches: list[str], *, kind: str = "oci", seed: int = 0,
              image_type: str = "container") -> Compose:
        archives = {
            arch: make_container_archive(
                tmp_path / "composes" / compose_id / f"{arch}.{kind}.tar.xz", arch,
                label=compose_id, kind=kind, seed=seed)
            for arch in arches
        }
        return Compose(koji_hub, compose_id, compose_images_json(compose_id, arches,
                                                                 image_type=image_type),
                       archives)

    return _make


def registry_entry(registry: LocalRegistry, **extra: Any) -> dict[str, Any]:
    return {"name": registry.host, "authfile": str(registry.authfile),
            "cert_dir": str(registry.cert_dir), **extra}


@pytest.fixture
def containers_config(koji_hub: Any, tmp_path: pathlib.Path) -> Callable[..., Config]:
    """containers_config([registry entries], latest_release="43", **containers) -> Config."""

    def _make(registries: list[dict], latest_release: str = "43",
              subvariants: tuple[str, ...] = ("Container_Base",), **containers: Any) -> Config:
        raw = config_dict(
            koji_hub, tmp_path / "work",
            uploader={"targets": ["containers"], "subvariants": list(subvariants),
                      "image_types": ["container", "docker"]},
            containers={"registries": registries, "latest_release": latest_release,
                        "timeout": 120, "retries": 0, **containers})
        return parse_config(raw, tmp_path / "fedimg.toml")

    return _make


@pytest.fixture
def emit() -> Recorder:
    return Recorder()


PUBLISHED = "fedimg.image.published.v1.container."
FAILED = "fedimg.image.failed.v1."


def run_compose(config: Config, compose_id: str, emit: Recorder,
                arches: list[str] | None = None) -> list[ImageReport]:
    """The uploader's own path for a compose message: find the images, fetch, verify, push;
    `arches` limits it to those images (as if each arch came in a message of its own)."""
    clients = make_clients(config, ["containers"])
    sources = find_images(Request("compose", compose_id), config=config, clients=clients)
    if arches is not None:
        sources = sorted((s for s in sources if s.identity.arch in arches),
                         key=lambda s: arches.index(s.identity.arch))
    return process_images(sources, config=config, clients=clients, emit=emit,
                          handlers={"containers": get_handler("containers")})

