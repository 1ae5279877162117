"""The datagrepper harness: messages go through RabbitMQ and datanommer and come back from /raw."""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import uuid

import pytest

from standins.datagrepper import Datagrepper


def _topic(suffix: str) -> str:
    return f"org.fedoraproject.test.fedimg.harness.{suffix}.{uuid.uuid4().hex[:6]}"


@pytest.mark.slow
def test_backdated_messages_come_back_in_order(datagrepper_empty: Datagrepper) -> None:
    dg = datagrepper_empty
    topic = _topic("order")
    base = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    # published newest first: the order must come from sent-at, not from arrival
    specs = [(topic, {"n": n}, base + dt.timedelta(seconds=n)) for n in (3, 2, 1)]
    ids = dg.publish_and_wait(specs)

    raw = dg.raw(topic=topic, order="asc", rows_per_page=100)
    got = raw["raw_messages"]
    assert [m["msg"] for m in got] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [m["msg_id"] for m in got] == ids[::-1]
    assert [m["timestamp"] for m in got] == [base.timestamp() + n for n in (1, 2, 3)]
    assert all(m["topic"] == topic for m in got)
    assert got[0]["headers"]["sent-at"] == "2025-03-01T12:00:01+00:00"
    assert raw["total"] == 3

    # time window: inclusive at both ends
    window = dg.raw(
        topic=topic,
        order="asc",
        start=(base + dt.timedelta(seconds=2)).timestamp(),
        end=(base + dt.timedelta(seconds=3)).timestamp(),
    )
    assert [m["msg"]["n"] for m in window["raw_messages"]] == [2, 3]
    iso_window = dg.raw(topic=topic, start="2025-03-01T12:00:00Z", end="2025-03-01T12:00:01Z")
    assert [m["msg"]["n"] for m in iso_window["raw_messages"]] == [1]


@pytest.mark.slow
def test_legacy_fedmsg_body_round_trips(
    datagrepper: Datagrepper, samples_dir: pathlib.Path
) -> None:
    sample = json.loads(
        (samples_dir / "fedimg-image.upload-completed-from-fedmsg_meta.json").read_text()
    )
    topic = sample["topic"]  # org.fedoraproject.stg.fedimg.image.upload
    sent_at = dt.datetime.fromtimestamp(int(sample["timestamp"]), dt.UTC)
    body = {**sample["msg"], "image_name": f"{sample['msg']['image_name']}-{uuid.uuid4().hex[:6]}"}
    [msg_id] = dg_ids = datagrepper.publish_and_wait([(topic, body, sent_at)])
    assert len(dg_ids) == 1

    stored = datagrepper.message(msg_id)
    assert stored is not None
    assert stored["msg"] == body
    assert stored["topic"] == topic
    assert stored["timestamp"] == sent_at.timestamp()

    found = datagrepper.raw(category="fedimg", start=sent_at.timestamp(), end=sent_at.timestamp())
    assert msg_id in [m["msg_id"] for m in found["raw_messages"]]


@pytest.mark.slow
def test_fedmsg_era_row_is_served(
    datagrepper_empty: Datagrepper, samples_dir: pathlib.Path
) -> None:
    sample = json.loads(
        (samples_dir / "fedimg-image.upload-completed-from-fedmsg_meta.json").read_text()
    )
    msg_id = datagrepper_empty.insert_legacy(
        sample["topic"], sample["msg"], 1468150000.0, agent_name="fedimg"
    )
    [row] = datagrepper_empty.raw(category="fedimg")["raw_messages"]
    assert row["msg_id"] == msg_id
    assert row["msg"] == sample["msg"]
    assert row["headers"] is None
    assert row["crypto"] == "x509"
    assert row["timestamp"] == 1468150000.0


@pytest.mark.slow
def test_reset_empties_history(datagrepper: Datagrepper) -> None:
    datagrepper.publish_and_wait([(_topic("reset"), {"x": 1})])
    assert datagrepper.count() >= 1
    datagrepper.reset()
    assert datagrepper.count() == 0
    assert datagrepper.raw()["raw_messages"] == []
    assert datagrepper.get("/messagecount").json() == {"messagecount": 0}
    # and it keeps working afterwards
    [msg_id] = datagrepper.publish_and_wait([(_topic("after-reset"), {"x": 2})])
    assert datagrepper.message(msg_id)["msg"] == {"x": 2}


@pytest.mark.slow
def test_unknown_id_is_none(datagrepper: Datagrepper) -> None:
    assert datagrepper.message(str(uuid.uuid4())) is None
    assert datagrepper.server.alive() and datagrepper.consumer.alive()
