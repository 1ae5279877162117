"""The hostile corpus (tests/data/hostile/*.json): reading it and building the world it names.

Each file holds ``{"_about": ..., "messages": [entry, ...]}``. An entry is one message:

- ``name``, ``topic``; the body as ``body`` (JSON), or raw bytes as ``raw`` (text),
  ``raw_hex`` or ``raw_parts`` (``[[text, times], ...]``, for bodies too big to write out);
- ``headers`` (added to fedora-messaging's), ``properties`` (``{"headers": null}`` etc. replace
  what a fedora-messaging publisher sends);
- ``hub``: an object this message alone names as ``@self``: ``{"kind": "task" | "build" |
  "compose", ...}`` (see ``Scene.make``), so images accepted from it can be told apart;
- ``expect``: ``drop`` (the callback drops it), ``invalid`` (fedora-messaging refuses it before
  the callback), ``ack`` (nothing to do), ``failed`` (acked, its image announced as failed),
  ``accepted`` (only entries with ``"hostile": false``: the controls);
- ``log``: text the consumer's output must contain (for a drop: in the one "dropping" line);
- ``upstream``: the entry is listed but not sent, because a library fails on it before fedimg
  sees the message; the text says which and what happens instead.

Placeholders: ``@self``; ``@task:good``, ``@task:child``, ``@build:good``, ``@compose:good``
(good objects only hostile entries name: an image accepted from one of them is a hostile
upload); ``@nan``, ``@inf``, ``@pad100m`` (100 MiB of "x"); prefixes ``@str10k`` (10 000 "x")
and ``@evil`` (a server of the test's that nothing may contact). In raw text ``@task:good`` and
the like become their JSON value and ``@payload`` a good images.json payload.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import pathlib
import re
import subprocess
from typing import Any

from standins import REPO_ROOT
from standins.koji_hub import BUILD_STATES, TASK_STATES, KojiHub
from tests.uploader.conftest import COMPOSE_43, compose_sample

CORPUS = REPO_ROOT / "tests" / "data" / "hostile"
OUTCOMES = ("drop", "invalid", "ack", "failed", "accepted")
NIGHTLY = "Fedora-Cloud-Base-Rawhide-20261125.n.0"
GOOD_COMPOSE = "Fedora-43-20251023.0"
_TOKEN = re.compile(r"@(task|build|compose):(\w+)")


def tiny_raw_xz(tag: bytes) -> bytes:
    """A small real .raw.xz (made by xz): 1 MiB, mostly zeros, some data at the start."""
    raw = (tag * 4096)[:65536] + bytes(1 << 20)
    return subprocess.run(["xz", "-z", "-c", "-0"], input=raw, capture_output=True,
                          check=True).stdout


@dataclasses.dataclass
class Entry:
    file: str
    name: str
    topic: str
    expect: str
    hostile: bool = True
    body: Any = None
    raw: bytes | None = None
    headers: dict = dataclasses.field(default_factory=dict)
    properties: dict = dataclasses.field(default_factory=dict)
    hub: dict | None = None
    log: str | None = None
    upstream: str | None = None  # why it is not sent: a fault of a library before fedimg
    own: tuple[str, Any] | None = None  # (kind, id) of the object made for it

    @property
    def label(self) -> str:
        return f"{self.file}: {self.name}"


def load() -> list[Entry]:
    """Every entry of every corpus file, checked for the fields the runner needs."""
    entries = []
    for path in sorted(CORPUS.glob("*.json")):
        for item in json.loads(path.read_text())["messages"]:
            item = dict(item)
            raw = item.pop("raw", None)
            if "raw_hex" in item:
                raw = bytes.fromhex(item.pop("raw_hex"))
            elif "raw_parts" in item:
                raw = "".join(text * times for text, times in item.pop("raw_parts"))
            entry = Entry(file=path.stem, raw=raw.encode() if isinstance(raw, str) else raw,
                          **item)
            if entry.expect not in OUTCOMES or (entry.expect == "accepted") == entry.hostile:
                raise ValueError(f"{entry.label}: expect {entry.expect!r} (hostile: "
                                 f"{entry.hostile})")
            entries.append(entry)
    return entries


class Scene:
    """The Koji hub, the compose server and the objects the corpus names, built for real."""

    def __init__(self, hub: KojiHub, composes: KojiHub, evil: KojiHub,
                 contents: dict[str, bytes | pathlib.Path], samples: pathlib.Path) -> None:
        self.hub, self.composes, self.evil = hub, composes, evil
        self.contents = contents
        self.sample = compose_sample(samples, COMPOSE_43)
        self._n = itertools.count(1)
        good_task = self.make({"kind": "task", "arches": ["x86_64", "aarch64"]})
        self.shared = {
            ("task", "good"): good_task,
            ("task", "child"): hub.tasks[good_task]["children"][0],
            ("build", "good"): self.make({"kind": "build"}),
            ("compose", "good"): self.make({"kind": "compose", "id": GOOD_COMPOSE,
                                            "files": "good"}),
        }

    # --- placeholders ---------------------------------------------------------------------
    def resolve(self, value: Any, own: Any = None) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v, own) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, own) for v in value]
        if not isinstance(value, str) or not value.startswith("@"):
            return value
        if value == "@self":
            return own
        if m := _TOKEN.fullmatch(value):
            return self.shared[(m[1], m[2])]
        fixed = {"@nan": float("nan"), "@inf": float("inf")}
        if value in fixed:
            return fixed[value]
        if value == "@pad100m":
            return "x" * (100 << 20)
        if value.startswith("@str10k"):
            return "x" * 10_000 + value[len("@str10k"):]
        if value.startswith("@evil"):
            return self.evil.topurl + value[len("@evil"):]
        raise ValueError(f"unknown placeholder {value!r}")

    def raw_text(self, text: bytes, own: Any = None) -> bytes:
        def sub(m: re.Match) -> str:
            value = own if m[0] == "@self" else self.shared[(m[1], m[2])]
            return json.dumps(value)

        return re.sub(r"@self|@(task|build|compose):(\w+)", sub, text.decode()).encode()

    def body_bytes(self, entry: Entry) -> bytes:
        own = entry.own[1] if entry.own else None
        if entry.raw is not None:
            try:
                return self.raw_text(entry.raw, own)
            except UnicodeDecodeError:
                return entry.raw
        return json.dumps(self.resolve(entry.body, own)).encode()

    # --- objects --------------------------------------------------------------------------
    def make(self, spec: dict) -> Any:
        """Create the object a spec describes on the hub or the compose server; its id."""
        spec = self.resolve(spec)
        return {"task": self._task, "build": self._build, "compose": self._compose}[
            spec["kind"]](spec)

    def _target(self, how: str) -> str:
        return {
            "evil": self.evil.add_file("work/evil.raw.xz", self.contents["good"]),
            "evil-host": "http://evil.example.invalid/kojifiles/x.raw.xz",
            "file": "file:///etc/passwd",
            "scheme": f"https://127.0.0.1:{self.hub.port}/kojifiles/x.raw.xz",
        }[how]

    def _files(self, spec: dict, arches: list[str], name: str) -> dict:
        content = self.contents[spec.get("content", "good")]
        if "files" in spec:
            return {a: {f: self.contents[k] for f, k in fs.items()}
                    for a, fs in spec["files"].items()}
        return {a: {f"{name}.{a}.raw.xz": content} for a in arches}

    def _task(self, spec: dict) -> int:
        hub = self.hub
        arches = spec.get("arches", ["x86_64"])
        tid = hub.add_image_task(arches=arches, files=self._files(spec, arches, NIGHTLY),
                                 owner=spec.get("owner", "releng"),
                                 state=TASK_STATES[spec.get("state", "CLOSED")],
                                 scratch=spec.get("scratch", True))
        children = list(hub.tasks[tid]["children"])
        for cid in children:
            result = hub.task_result(cid)
            for fname in result["files"] if isinstance(result, dict) else []:
                if fname.endswith(".raw.xz"):
                    self._serve_hostile(spec, hub.task_url(cid, fname))
            if "result" in spec:
                hub.set_task_result(cid, {**hub.task_result(cid), **spec["result"]})
            hub.tasks[cid].update(spec.get("child", {}))
        hub.tasks[tid].update(spec.get("parent", {}))
        if "elsewhere" in spec:
            hub.add_file(spec["elsewhere"], self.contents["good"])
        return tid

    def _serve_hostile(self, spec: dict, url: str) -> None:
        if "redirect" in spec:
            self.hub.redirect(url, self._target(spec["redirect"]))
        if "corrupt" in spec:
            self.hub.corrupt(url, spec["corrupt"])

    def _build(self, spec: dict) -> int:
        hub = self.hub
        release = f"20261125.n.{next(self._n)}"
        name = spec.get("name", "Fedora-Cloud-Base")
        bid = hub.add_image_build(name=name, release=release,
                                  files=self._files(spec, ["x86_64"], f"{name}-Rawhide-{release}"),
                                  owner=spec.get("owner", "releng"),
                                  state=BUILD_STATES[spec.get("state", "COMPLETE")])
        for archive in (a for a in hub.archives if a["build_id"] == bid):
            self._serve_hostile(spec, hub.build_url(bid, archive["filename"]))
            archive["size"] += spec.get("size_delta", 0)
            archive.update(spec.get("archive", {}))
        hub.builds[bid].update(spec.get("build", {}))
        return bid

    def _compose(self, spec: dict) -> str:
        server = self.composes
        cid = spec.get("id") or f"Fedora-43-20251101.{next(self._n)}"
        cdir = f"compose/43/{cid}/compose"
        images = copy.deepcopy(self.sample)
        images["payload"]["compose"]["id"] = cid
        images["payload"]["compose"].update(spec.get("compose", {}))
        entries = [e for arch in images["payload"]["images"].values() for es in arch.values()
                   for e in es if e["type"] == "raw-xz"]
        for entry in entries:
            if "files" in spec:
                url = server.add_file(f"{cdir}/{entry['path']}", self.contents[spec["files"]])
                local = server.file_path(url)
                entry["size"] = local.stat().st_size
                entry["checksums"] = {"sha256": hashlib.sha256(local.read_bytes()).hexdigest()}
                if "redirect" in spec:
                    server.redirect(url, self._target(spec["redirect"]))
            if spec.get("checksum") == "wrong":
                entry["checksums"] = {"sha256": hashlib.sha256(b"another file").hexdigest()}
            entry.update(spec.get("entries", {}))
        where = f"{cdir}/metadata/images.json"
        if "images_json_raw" in spec:
            raw = spec["images_json_raw"].replace("@payload", json.dumps(images["payload"]))
            url = server.add_file(where, raw.encode())
        elif "images_json_size" in spec:
            big = server.workdir / f"images-{cid}.json"
            with open(big, "wb") as f:
                f.truncate(spec["images_json_size"])
            url = server.add_file(where, big)
        else:
            url = server.add_file(where, json.dumps(images).encode())
        if "images_json_redirect" in spec:
            server.redirect(url, self._target(spec["images_json_redirect"]))
        return cid
