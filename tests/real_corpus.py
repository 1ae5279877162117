"""The corpus of real Fedora records under tests/data/real, read the way the tests need it.

Layout (every file names its origin in a top-level "source": repository, path, commit, note):
    messages/*.json   {"family", "records": [{"fixture", "row" | "message"}]}
                      "row": a datagrepper/fedmsg row (topic, msg, timestamp, msg_id, ...);
                      "message": fedora-messaging's JSON form (topic, body, headers, id).
    koji/*.json       {"records": [...]}: Koji image tasks and builds as their sources show them.
    composes/*.json   {"images_json": productmd images.json of one compose}
    expected-unreadable.json   record id -> the reason the reporter gives for not reading it.

A record's id is "<file without .json>#<index>", e.g. "messages/fedimg-fedmsg_meta#3".
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from dataclasses import dataclass
from typing import Any

REAL = pathlib.Path(__file__).parent / "data" / "real"


@dataclass(frozen=True)
class MessageRecord:
    id: str
    family: str
    row: dict[str, Any]  # datagrepper /raw shape, what the reporter's fold reads


def _load(path: pathlib.Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _rel(path: pathlib.Path) -> str:
    return str(path.relative_to(REAL).with_suffix(""))


def _as_row(record: dict[str, Any], record_id: str) -> dict[str, Any]:
    """A datagrepper row for the record. Fixtures carry no msg_id or time of their own; the
    record id and time 0 stand in, so identical fixtures stay distinct rows and the fold can
    place every write (it skips rows without a timestamp)."""
    if "row" in record:
        row = dict(record["row"])
    else:
        msg = record["message"]
        sent = (msg.get("headers") or {}).get("sent-at")
        row = {"topic": msg["topic"], "msg": msg["body"], "headers": msg.get("headers"),
               "msg_id": msg.get("id"),
               "timestamp": dt.datetime.fromisoformat(sent).timestamp() if sent else None}
    row.setdefault("msg_id", None)
    row["msg_id"] = row["msg_id"] or record_id
    if not isinstance(row.get("timestamp"), int | float):
        row["timestamp"] = 0.0
    return row


def message_records() -> list[MessageRecord]:
    out = []
    for path in sorted((REAL / "messages").glob("*.json")):
        data = _load(path)
        for i, record in enumerate(data["records"]):
            rid = f"{_rel(path)}#{i}"
            out.append(MessageRecord(rid, data["family"], _as_row(record, rid)))
    return out


def koji_records(name: str) -> list[dict[str, Any]]:
    return _load(REAL / "koji" / f"{name}.json")["records"]


def composes() -> dict[str, dict[str, Any]]:
    """compose id -> images.json."""
    out = {}
    for path in sorted((REAL / "composes").glob("*.json")):
        images = _load(path)["images_json"]
        out[images["payload"]["compose"]["id"]] = images
    return out


def expected_unreadable() -> dict[str, str]:
    return _load(REAL / "expected-unreadable.json")["records"]
