"""The fold: history rows in, the state of every image out. A pure function of the message SET.

Every piece of an image's state is a register written with a version (timestamp, msg_id), and a
register keeps the write with the highest version; sets of facts (regions, formats, QE suites,
failures) are maps of such registers; first_seen/updated are min/max; the channel is the most
official one ever observed (promotion turns a candidate into "release"). Registers merge
commutatively, associatively and idempotently, so the result depends neither on the order rows
arrive in (datagrepper returns rows of the same second in arbitrary order), nor on duplicates,
nor on where the history is split between runs: fold(A + B) == fold_onto(fold(A), B). This is what
makes an incremental run give exactly the output of a full one.

Counters are per distinct msg_id (``seen``), so a row that comes back twice counts once.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from reporter import containers
from reporter.families import Observation, Unreadable, read_row
from reporter.fields import show
from shared.images import CHANNELS

log = logging.getLogger(__name__)

Version = tuple[float, str]  # (timestamp, msg_id): total order, the deterministic tie-break
_RANK = {c: i for i, c in enumerate(CHANNELS)}
FIELDS = ("aws", "downloads", "openstack", "failures", "qe", "promoted", "azure", "gcp",
          "containers")
IDENTITY = ("release", "subvariant", "arch", "cloud")
SOURCE = ("compose_id", "koji_task_id", "koji_build_id")


@dataclass
class ImageState:
    name: str
    derived: bool = True  # False once any message carried this exact name itself
    first_seen: float = float("inf")
    updated: float = float("-inf")
    channel: str | None = None
    identity: dict[str, list] = field(default_factory=dict)  # key -> [ts, msg_id, value]
    source: dict[str, list] = field(default_factory=dict)
    regs: dict[str, dict[str, list]] = field(default_factory=dict)  # field -> key -> [ts, id, v]


@dataclass
class FoldState:
    images: dict[str, ImageState] = field(default_factory=dict)  # image_key(name) -> state
    seen: dict[str, float] = field(default_factory=dict)  # msg_id -> timestamp
    read: int = 0
    skipped: int = 0
    last_timestamp: float | None = None
    unplaced: int = 0  # rows of this run without a usable time or not even an object
    # where images not in ``images`` are kept (reporter.store): the fold loads them when a row
    # touches them, so a run holds only what its rows are about
    load: Callable[[str], ImageState | None] | None = None
    touched: set[str] = field(default_factory=set)  # image keys this run's rows changed


def _put(regs: dict[str, list], key: str, version: Version, value: Any) -> None:
    old = regs.get(key)
    ts = version[0]
    # (old[0], old[1]) < version, without making a tuple per write
    if old is None or old[0] < ts or (old[0] == ts and old[1] < version[1]):
        regs[key] = [ts, version[1], value]


# Rows are dated between the epoch and the year 9999: anything else (-1e11, 1e400 = inf, NaN)
# cannot be placed in time, shown as a date or used as a checkpoint.
MIN_TIMESTAMP = 0.0  # 1970-01-01T00:00:00Z
MAX_TIMESTAMP = 253402300799.0  # 9999-12-31T23:59:59Z
_MSG_ID = re.compile(r"[!-~]{1,200}", re.ASCII)  # printable ASCII: uuids, "2014-<uuid>", ...
_TOPIC_MAX = 255


def row_key(row: Any) -> tuple[float, str]:
    """(timestamp, msg_id) of a row; Unreadable (saying why) when it cannot be placed in time.

    A row without a usable msg_id gets one from its content, so a duplicate of it is still
    recognised; ``check_row`` says whether such a row may be used.
    """
    if not isinstance(row, dict):
        raise Unreadable(f"the row is {type(row).__name__}, not an object")
    ts = row.get("timestamp")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or \
            not MIN_TIMESTAMP <= ts <= MAX_TIMESTAMP:
        raise Unreadable(f"timestamp {show(ts)} is no time between 1970 and 9999")
    msg_id = row.get("msg_id")
    if isinstance(msg_id, str) and _MSG_ID.fullmatch(msg_id):
        return float(ts), msg_id
    blob = json.dumps(row, sort_keys=True, default=repr).encode()
    prefix = "no-msg-id:" if msg_id is None else "bad-msg-id:"
    return float(ts), prefix + hashlib.sha256(blob).hexdigest()


def check_row(row: dict[str, Any], msg_id: str) -> None:
    """Unreadable unless the row's own msg_id and topic are usable (row_key placed it)."""
    if msg_id.startswith("bad-msg-id:"):
        raise Unreadable(f"msg_id {show(row.get('msg_id'))} is not printable ASCII of 1 to "
                         "200 characters")
    topic = row.get("topic")
    if not isinstance(topic, str) or len(topic) > _TOPIC_MAX:
        raise Unreadable(f"topic {show(topic)} is not a string of at most {_TOPIC_MAX}")


def apply_row(state: FoldState, row: Any) -> None:
    """Fold one row into ``state`` (in place). Never raises for bad history."""
    try:
        ts, msg_id = key = row_key(row)
    except Unreadable as e:
        # Not a message of the timeline: it cannot be told apart from itself when an overlap
        # reads it again, so it is counted per run (``unplaced``), not in the report's totals.
        state.unplaced += 1
        log.warning("skipping a history row: %s", e)
        return
    if msg_id in state.seen:
        return
    state.seen[msg_id] = ts
    state.read += 1
    if state.last_timestamp is None or ts > state.last_timestamp:
        state.last_timestamp = ts
    try:
        check_row(row, msg_id)
        observations = read_row(row)
    except Unreadable as e:
        state.skipped += 1
        log.warning("skipping message %s (%s): %s", msg_id, show(row.get("topic")), e)
        return
    for obs in observations:
        _observe(state, obs, key)


def image_key(name: str) -> str:
    """Images are matched without regard to case: 2014 history wrote names in lower case."""
    return name.casefold()


def _observe(state: FoldState, obs: Observation, version: Version) -> None:
    # the fold's innermost loop (a million rows at Fedora's scale): locals and no needless copies
    name = obs.name
    key = image_key(name)
    img = state.images.get(key)
    if img is None and state.load is not None:
        img = state.load(key)
        if img is not None:
            state.images[key] = img
    if img is None:
        img = state.images[key] = ImageState(name)
    elif name < img.name:
        img.name = name  # the capitalised spelling wins, whatever order rows come in
    state.touched.add(key)
    ts = version[0]
    if not obs.derived_name:
        img.derived = False
    if ts < img.first_seen:
        img.first_seen = ts
    if ts > img.updated:
        img.updated = ts
    identity = obs.identity
    channel = identity.get("channel")
    if channel in _RANK and (img.channel is None or _RANK[channel] > _RANK[img.channel]):
        img.channel = channel
    for k in IDENTITY:
        value = identity.get(k)
        if value is not None:
            _put(img.identity, k, version, value)
    source = obs.source
    if source:
        for k in SOURCE:
            value = source.get(k)
            if value is not None:
                _put(img.source, k, version, value)
    regs = img.regs
    for fld, reg_key, value in obs.sets:
        # canonical key order, so a state restored from the (sorted) store renders the same
        if isinstance(value, dict) and len(value) > 1:
            value = dict(sorted(value.items()))
        field_regs = regs.get(fld)
        if field_regs is None:
            field_regs = regs[fld] = {}
        _put(field_regs, reg_key, version, value)


def fold(rows: Iterable[dict[str, Any]]) -> FoldState:
    """The state of every image after ``rows`` (any order, duplicates allowed)."""
    return fold_onto(FoldState(), rows, copy_state=False)


def fold_onto(
    state: FoldState, rows: Iterable[dict[str, Any]], copy_state: bool = True
) -> FoldState:
    """``state`` with ``rows`` folded in; the input state is left alone unless copy_state=False."""
    out = copy.deepcopy(state) if copy_state else state
    for row in rows:
        apply_row(out, row)
    return out


# ---- the report view of a state -----------------------------------------------------------------


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(regs: dict[str, list], key: str) -> Any:
    reg = regs.get(key)
    return None if reg is None else reg[2]


def _cloud_success(reg: list | None, destination: str) -> list | None:
    """The Azure or GCE register if it covers a failure at `destination`: the definition or
    image or GCE family (the whole image failed) or an Azure region it is now replicated to."""
    if reg is None:
        return None
    value = reg[2] or {}
    covered = {value.get("image_definition"), value.get("image_name"), value.get("family"),
               *(value.get("regions") or {})}
    return reg if destination in covered else None


def image_record(img: ImageState, holders: dict[tuple, tuple] | None = None) -> dict[str, Any]:
    """One entry of images.json (docs/report.md, "Outputs"; extra keys are additive).

    `holders` (containers.tag_holders over every image) says which image's manifest list each
    container tag names now; without it, an image shows every tag its messages claimed."""
    regs = img.regs
    downloads = regs.get("downloads", {})
    failures = []
    for reg in regs.get("failures", {}).values():
        f = reg[2]
        # a target's successes are the field named after it, keyed by destination
        success = (regs.get(f["target"], {}) if f["target"] in ("aws", "downloads", "openstack")
                   else {}).get(f["destination"])
        if f["target"] in ("azure", "gcp"):  # one register: a later success covers the failed
            success = _cloud_success(regs.get(f["target"], {}).get(""), f["destination"])
        if success is not None and (success[0], success[1]) > (reg[0], reg[1]):
            continue  # a later success for the same destination supersedes the failure
        failures.append({**f, "at": iso(reg[0])})
    failures.sort(key=lambda f: (f["target"], f["destination"]))
    suites = {s: {**reg[2], "at": iso(reg[0])} for s, reg in sorted(regs.get("qe", {}).items())}
    qe = None
    if suites:
        results = {s["result"] for s in suites.values()}
        overall = ("failed" if "failed" in results
                   else "needs_inspection" if "needs_inspection" in results else "passed")
        qe = {"result": overall, "suites": suites}
    promoted = regs.get("promoted", {}).get("")
    return {
        "name": img.name,
        "release": _value(img.identity, "release"),
        "subvariant": _value(img.identity, "subvariant"),
        "arch": _value(img.identity, "arch"),
        "channel": img.channel,
        "cloud": _value(img.identity, "cloud"),
        "compose_id": _value(img.source, "compose_id"),
        "koji_task_id": _value(img.source, "koji_task_id"),
        "koji_build_id": _value(img.source, "koji_build_id"),
        "first_seen": iso(img.first_seen),
        "updated": iso(img.updated),
        "official": promoted is not None,
        "promoted": None if promoted is None else {**promoted[2], "at": iso(promoted[0])},
        "aws": {region: reg[2] for region, reg in sorted(regs.get("aws", {}).items())},
        "downloads": [reg[2] for _, reg in sorted(downloads.items())],
        "openstack": {cloud: reg[2] for cloud, reg in sorted(regs.get("openstack", {}).items())},
        "qe": qe,
        "failures": failures,
        "azure": _value(regs.get("azure", {}), ""),
        "gcp": _value(regs.get("gcp", {}), ""),
        "containers": containers.records(regs.get(containers.FIELD, {}), holders or {}),
        "name_derived": img.derived,
    }


def image_records(state: FoldState) -> list[dict[str, Any]]:
    holders = containers.tag_holders(img.regs.get(containers.FIELD, {})
                                     for img in state.images.values())
    return [image_record(state.images[name], holders) for name in sorted(state.images)]


# ---- persistence (DIR/state.json): what an incremental run needs to continue exactly -----------

# /2: container registers are per registry ("<registry> image" / "<registry> list"); a /1 state
# is no usable checkpoint, so the first run after the change is a full one
STATE_SCHEMA = "fedimg.report-state/2"


def state_to_json(state: FoldState, source: str, overlap: float) -> dict[str, Any]:
    """Everything of the state, except seen ids older than the overlap window (never refetched)."""
    horizon = (state.last_timestamp or 0.0) - overlap
    return {
        "schema": STATE_SCHEMA,
        "source": source,
        "overlap": overlap,
        "read": state.read,
        "skipped": state.skipped,
        "last_timestamp": state.last_timestamp,
        "seen": {i: ts for i, ts in sorted(state.seen.items()) if ts >= horizon},
        "images": {
            key: {
                "name": img.name, "derived": img.derived, "first_seen": img.first_seen,
                "updated": img.updated,
                "channel": img.channel, "identity": img.identity, "source": img.source,
                "regs": img.regs,
            }
            for key, img in sorted(state.images.items())
        },
    }


def state_from_json(data: dict[str, Any]) -> FoldState:
    """The inverse of state_to_json; raises ValueError/KeyError/TypeError on a malformed file."""
    if data.get("schema") != STATE_SCHEMA:
        raise ValueError(f"schema is {data.get('schema')!r}, expected {STATE_SCHEMA}")
    images = {}
    for key, d in data["images"].items():
        images[image_key(key)] = ImageState(
            name=d.get("name", key), derived=bool(d["derived"]), first_seen=float(d["first_seen"]),
            updated=float(d["updated"]), channel=d["channel"], identity=dict(d["identity"]),
            source=dict(d["source"]), regs={k: dict(v) for k, v in d["regs"].items()},
        )
    last = data["last_timestamp"]
    return FoldState(
        images=images,
        seen={str(k): float(v) for k, v in data["seen"].items()},
        read=int(data["read"]),
        skipped=int(data["skipped"]),
        last_timestamp=None if last is None else float(last),
    )
