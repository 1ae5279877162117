"""Helpers for the uploader intake tests: fedimg configs pointing at the Koji hub stand-in."""

from __future__ import annotations

import copy
import json
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
import tomli_w

from shared.config import Config, parse_config
from uploader.model import Clients
from uploader.pipeline import make_clients

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

COMPOSE_43 = "fedfind__tests-data__images.json__Fedora-43-20251023.0__Cloud.json"
COMPOSE_RAWHIDE = "fedfind__tests-data__images.json__Fedora-Rawhide-20240829.n.1__Cloud.json"


def config_dict(hub: Any, work_dir: pathlib.Path, **sections: dict) -> dict:
    """A fedimg config (as a TOML-shaped dict) for the stand-in hub; fast retries for tests."""
    raw: dict[str, dict] = {
        "koji": {"hub": hub.url, "topurl": hub.topurl, "owners": ["releng"], "timeout": 10,
                 "retries": 0, "retry_interval": 0},
        "uploader": {"targets": [], "work_dir": str(work_dir), "fetch_timeout": 5,
                     "fetch_retries": 1, "retry_delay": 0, "max_deliveries": 3},
        "compose": {"base_url": hub.topurl + "/compose"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def toml_text(raw: dict) -> str:
    """Render a config dict as TOML."""
    return tomli_w.dumps(raw)


@pytest.fixture
def work_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "work"


@pytest.fixture
def make_config(koji_hub: Any, work_dir: pathlib.Path) -> Callable[..., Config]:
    """make_config(uploader={...}, koji={...}) -> Config for koji_hub."""

    def _make(**sections: dict) -> Config:
        return parse_config(config_dict(koji_hub, work_dir, **sections), "test.toml")

    return _make


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def clients(config: Config) -> Clients:
    return make_clients(config, [])


def compose_sample(samples_dir: pathlib.Path, name: str) -> dict:
    return copy.deepcopy(json.loads((samples_dir / name).read_text())["data"])


def serve_compose(hub: Any, images_json: dict, layout_dir: str,
                  files: dict[str, pathlib.Path | bytes] | None = None) -> str:
    """Serve images.json (and image files by their images.json path) below the compose base.

    `files` maps an images.json `path` to local content; its entry's size and sha256 are
    rewritten to match, like pungi would have recorded them. Returns the compose dir URL.
    """
    import hashlib

    files = files or {}
    for variant in images_json["payload"]["images"].values():
        for entries in variant.values():
            for entry in entries:
                content = files.get(entry["path"])
                if content is None:
                    continue
                data = content if isinstance(content, bytes) else pathlib.Path(content)
                url = hub.add_file(f"compose/{layout_dir}/compose/{entry['path']}", data)
                local = hub.file_path(url)
                entry["size"] = local.stat().st_size
                entry["checksums"] = {"sha256": hashlib.sha256(local.read_bytes()).hexdigest()}
    hub.add_file(f"compose/{layout_dir}/compose/metadata/images.json",
                 json.dumps(images_json).encode())
    return f"{hub.topurl}/compose/{layout_dir}"
