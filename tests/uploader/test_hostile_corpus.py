"""The hostile corpus through the real consumer on the real broker.

Every message of tests/data/hostile/ (see tests/uploader/hostile.py) is published raw with pika
to a quorum queue bound to '#', and one `fedora-messaging consume` process of
`uploader.consumer:Uploader` (no target: fetch and verify only) takes them from there, against
a Koji hub stand-in, a compose server and a third server standing for everywhere else. The
consumer's own audit hooks (standins.net_audit) record every host it tries to reach.

Asserted: each message ends as its entry expects (with the log line it names), 0 images
accepted where the input is hostile, 0 crashes (the process lives, no unexpected exception, no
Nack), 0 contacts off the configured hosts, 0 files left in the work directory. The outcome
table is printed and repeated in the terminal summary.
"""

from __future__ import annotations

import collections
import datetime
import re
import time
import uuid

import pika
import pytest

from standins import REPO_ROOT
from standins.amqp import (
    AMQP_HOST,
    AMQP_PORT,
    BusRecorder,
    delete_queues,
    fedora_messaging_toml,
    pika_connection,
)
from standins.disk_images import MiB, make_xz_bomb
from standins.koji_hub import KojiHub
from standins.net_audit import off_host, read_log, subprocess_env
from tests.uploader.conftest import toml_text
from tests.uploader.hostile import Entry, Scene, load, tiny_raw_xz

CALLBACK = "uploader.consumer:Uploader"
FINAL = {
    "ack": re.compile(r"Successfully consumed message from topic .* \(message id (\S+)\)"),
    "drop": re.compile(r"Consumer requested message id (\S+) be dropped"),
    "invalid": re.compile(r"Message id (\S+) did not pass validation"),
    "nack": re.compile(r"Returning message id (\S+) to the queue"),
}
CRASH = ("unexpected error", "Received unexpected exception", "Consumer halted",
         "unexpected AMQP error", "Traceback")


@pytest.fixture
def servers(tmp_path):
    made = [KojiHub(workdir=tmp_path / name) for name in ("hub", "composes", "evil")]
    yield made
    for server in made:
        server.close()


def _contents(tmp_path):
    good = tiny_raw_xz(b"fedimg hostile corpus ")
    return {
        "good": good, "truncated": good[: len(good) // 2], "empty": b"",
        "not-xz": b"this is not an xz file\n" * 64,
        # 1 GiB that says so, and 32 MiB whose index says 4 MiB; the limit below is 16 MiB
        "bomb": make_xz_bomb(tmp_path / "bomb.raw.xz", 1024 * MiB, unit=16 * MiB),
        "liar": make_xz_bomb(tmp_path / "liar.raw.xz", 32 * MiB, claim=4 * MiB),
    }


def _fedimg_config(tmp_path, hub, composes):
    path = tmp_path / "fedimg.toml"
    path.write_text(toml_text({
        "koji": {"hub": hub.url, "topurl": hub.topurl, "owners": ["releng"], "timeout": 10,
                 "retries": 0, "retry_interval": 0},
        "uploader": {"targets": [], "work_dir": str(tmp_path / "work"), "fetch_timeout": 5,
                     "fetch_retries": 0, "retry_delay": 0, "max_deliveries": 3,
                     "max_disk_mib": 16},
        "compose": {"base_url": composes.topurl + "/compose"},
    }))
    return path


def _publish_all(exchange, scene, entries):
    """Publish every entry as fedora-messaging would (or as the entry says); id -> entry."""
    ids = {}
    conn = pika_connection()
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for entry in entries:
            message_id = str(uuid.uuid4())
            headers = {"fedora_messaging_schema": "base.message",
                       "fedora_messaging_severity": 20,
                       "sent-at": datetime.datetime.now(datetime.UTC).isoformat(),
                       **entry.headers}
            props = {"headers": headers, "content_encoding": "utf-8",
                     "content_type": "application/json", "delivery_mode": 2,
                     "message_id": message_id, **entry.properties}
            channel.basic_publish(exchange, entry.topic, scene.body_bytes(entry),
                                  pika.BasicProperties(**props), mandatory=True)
            ids[message_id] = entry
    finally:
        conn.close()
    return ids


def _outcomes(output, ids):
    seen: dict[str, list[str]] = collections.defaultdict(list)
    for how, pattern in FINAL.items():
        for message_id in pattern.findall(output):
            if message_id in ids:
                seen[message_id].append(how)
    return seen


def _by_object(messages, scene, entries):
    """fedimg messages per entry label (the entry whose object they are about)."""
    owners = {e.own: e.label for e in entries if e.own}
    owners.update({key: "(shared good objects)" for key in
                   (("task", scene.shared[("task", "good")]),
                    ("build", scene.shared[("build", "good")]),
                    ("compose", scene.shared[("compose", "good")]))})
    out = collections.defaultdict(list)
    for m in messages:
        b = m.body
        key = (("compose", b["compose_id"]) if b.get("compose_id")
               else ("build", b["koji_build_id"]) if b.get("koji_build_id")
               else ("task", b.get("koji_task_id")))
        out[owners.get(key, f"(unknown object {key})")].append(m)
    return out


@pytest.mark.slow
def test_the_hostile_corpus_uploads_nothing_crashes_nothing_and_stays_on_host(
        amqp_exchange, servers, tmp_path, run_consumer, samples_dir, terminal_summary):
    everything = load()
    entries = [e for e in everything if not e.upstream]
    assert len(entries) >= 150
    hub, composes, evil = servers
    scene = Scene(hub, composes, evil, _contents(tmp_path), samples_dir)
    for entry in entries:
        if entry.hub:
            entry.own = (entry.hub["kind"], scene.make(entry.hub))
    queue = f"fedimg-test-hostile-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "fedora-messaging.toml"
    config.write_text(fedora_messaging_toml(
        exchange=amqp_exchange, queue=queue, routing_keys=["#"],
        consumer_config={"targets": [],
                         "fedimg_config": str(_fedimg_config(tmp_path, hub, composes))},
        extra_loggers=("uploader",), prefetch_count=1,
        queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 10}))
    audit = tmp_path / "contacts.log"
    recorder = BusRecorder(amqp_exchange, routing_keys=("fedimg.#",))
    started = time.monotonic()
    try:
        with run_consumer(CALLBACK, config, env=subprocess_env(
                audit, {"PYTHONPATH": str(REPO_ROOT)})) as proc:
            ids = _publish_all(amqp_exchange, scene, entries)
            deadline = time.monotonic() + 600
            while len(_outcomes(proc.output(), ids)) < len(ids):
                assert proc.alive(), proc.output()[-3000:]
                assert time.monotonic() < deadline, "not every message was settled in 600 s"
                time.sleep(0.5)
            time.sleep(1)  # let the last fedimg messages reach the recorder
            output = proc.output()
            alive = proc.alive()
        published = recorder.messages()
    finally:
        recorder.close()
        delete_queues([queue])
    elapsed = time.monotonic() - started

    outcomes = _outcomes(output, ids)
    about = _by_object(published, scene, entries)
    rows, wrong = [], []
    for message_id, entry in ids.items():
        got = outcomes[message_id]
        mine = about.get(entry.label, [])
        accepted = [m for m in mine if m.topic.startswith("fedimg.image.accepted.")]
        failed = [m for m in mine if m.topic.startswith("fedimg.image.failed.")]
        observed = ",".join(got)
        if observed == "ack" and accepted:
            observed = "accepted"
        elif observed == "ack" and failed:
            observed = "failed"
        problems = _check(entry, message_id, observed, output, failed)
        rows.append(f"{entry.expect:<8} {observed:<8} {len(accepted):>3} {len(failed):>3}  "
                    f"{'OK ' if not problems else 'BAD'} {entry.label}")
        wrong += [f"{entry.label}: {p}" for p in problems]
    rows += [f"{e.expect:<8} {'not sent':<8}   -   -  --- {e.label} (upstream: {e.upstream})"
             for e in everything if e.upstream]

    hostile_uploads = [m for label, ms in about.items() for m in ms
                       if m.topic.startswith("fedimg.image.accepted.")
                       and label not in {e.label for e in entries if not e.hostile}]
    contacts = read_log(audit)
    allowed = {("127.0.0.1", hub.port), ("127.0.0.1", composes.port), (AMQP_HOST, AMQP_PORT)}
    strays = off_host(contacts, allowed)
    leftovers = sorted(p.name for p in (tmp_path / "work").glob("*"))
    crashes = [line for line in output.splitlines() if any(c in line for c in CRASH)]
    long_lines = [line[:120] for line in output.splitlines()
                  if "[uploader" in line and len(line) > 2000]
    counts = collections.Counter(e.expect for e in ids.values())
    terminal_summary(
        f"hostile corpus: {len(ids)} messages ({sum(e.hostile for e in entries)} hostile) in "
        f"{elapsed:.0f} s",
        "expect   observed acc fail      entry\n" + "\n".join(rows) + "\n"
        f"expected: {dict(counts)}; hostile uploads: {len(hostile_uploads)}; crashes: "
        f"{len(crashes) + (not alive)}; off-host contacts: {len(strays)} (of {len(contacts)}); "
        f"files left in work_dir: {len(leftovers)}; evil server requests: {len(evil.requests)}")

    assert wrong == []
    assert hostile_uploads == []
    assert alive and crashes == []
    assert strays == [] and evil.requests == []
    assert {c.port for c in contacts if c.event == "connect"} >= {hub.port, composes.port}
    assert leftovers == []
    assert long_lines == []


def _check(entry: Entry, message_id: str, observed: str, output: str, failed: list) -> list:
    """What is wrong with how one message ended (empty: nothing)."""
    problems = []
    if observed != entry.expect:
        problems.append(f"expected {entry.expect}, got {observed or 'nothing'}")
    if entry.log and entry.expect == "drop":
        lines = [line for line in output.splitlines()
                 if re.search(rf"(dropping|ignoring) message {message_id}\b", line)]
        if len(lines) != 1 or entry.log not in lines[0]:
            problems.append(f"no single drop line naming {entry.log!r}: {lines}")
    elif entry.log and entry.log not in output:
        problems.append(f"{entry.log!r} not in the consumer's output")
    if entry.log and entry.expect == "failed" and not any(
            entry.log in m.body.get("error", "") for m in failed):
        problems.append(f"no failure message naming {entry.log!r}")
    return problems
