"""The reporter over the corpus of real Fedora records (tests/data/real).

Every message that names an image becomes that image's entry with the right identity and every
region -> AMI pair it carries; every message the reporter cannot read is listed, with the reason,
in expected-unreadable.json, and that list is kept exact in both directions.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from reporter import outputs
from reporter.explain import explain, render
from reporter.families import Unreadable, read_row, topic_base
from reporter.fold import fold, image_key, image_records
from tests.real_corpus import REAL, expected_unreadable, message_records

PRODUCTION = "messages/fiu-production-fetch_amis#0"
REPO = pathlib.Path(__file__).resolve().parents[2]


def _expected_images() -> dict[str, list[list[str]]]:
    return json.loads((REAL / "expected-images.json").read_text())["records"]


def _aws_pairs_in(row: dict) -> dict[str, str]:
    """Region -> AMI as the raw record states it, read without the reporter's code."""
    body = row["msg"]
    base = topic_base(row["topic"])
    if base.startswith("fedora_image_uploader.published.v1.aws"):
        return dict(body["regions"])
    if base in ("fedimg.image.upload", "fedimg.image.copy", "fedimg.image.publish") and (
            body.get("status") in (None, "completed")):
        (region,) = re.findall(r"[a-z]{2}-[a-z]+-\d", body["destination"])
        return {region: body["extra"]["id"]}
    return {}


def test_the_corpus_is_large_and_every_file_names_its_origin():
    files = sorted(REAL.glob("*/*.json"))
    for path in files:
        source = json.loads(path.read_text())["source"]
        assert {"repository", "path", "commit", "note"} <= set(source), path
    records = message_records()
    families = {r.family for r in records}
    assert families == {"fedimg", "fedora_image_uploader", "koji", "pungi"}
    composes = list((REAL / "composes").glob("*.json"))
    koji = [r for p in (REAL / "koji").glob("*.json")
            for r in json.loads(p.read_text())["records"]]
    assert len(records) + len(composes) + len(koji) >= 75
    # counting each image a compose lists, the corpus holds hundreds of real records
    entries = sum(len(e) for p in composes
                  for v in json.loads(p.read_text())["images_json"]["payload"]["images"].values()
                  for e in v.values())
    assert len(records) + len(koji) + entries >= 100


def test_every_unreadable_record_is_explained_and_no_explanation_is_stale():
    unread = {}
    for record in message_records():
        try:
            read_row(record.row)
        except Unreadable as exc:
            unread[record.id] = str(exc)
    assert unread == expected_unreadable()  # 0 unexplained, 0 stale


def test_the_fold_gives_every_named_image_its_identity_and_amis():
    records = message_records()
    state = fold(r.row for r in records)
    images = {image_key(i["name"]): i for i in image_records(state)}
    expected = _expected_images()
    readable = {r.id for r in records} - set(expected_unreadable())
    assert set(expected) == readable  # every readable record names at least one image
    by_id = {r.id: r for r in records}
    for rid, wanted in expected.items():
        for name, release, subvariant, arch in wanted:
            img = images[image_key(name)]
            assert (img["release"], img["subvariant"], img["arch"]) == (
                release, subvariant, arch), rid
        for region, ami in _aws_pairs_in(by_id[rid].row).items():
            assert images[image_key(wanted[0][0])]["aws"][region] == {"ami": ami}, rid
    # fixtures that reuse one msg_id are one message to the fold (datagrepper would agree)
    unread_ids = {by_id[rid].row["msg_id"] for rid in expected_unreadable()}
    assert (state.read, state.skipped) == (len({r.row["msg_id"] for r in records}),
                                           len(unread_ids))


def test_a_production_aws_message_without_subvariant_keeps_all_its_regions():
    record = next(r for r in message_records() if r.id == PRODUCTION)
    assert "subvariant" not in record.row["msg"] and "release" not in record.row["msg"]
    (img,) = image_records(fold([record.row]))
    assert img["name"] == record.row["msg"]["image_name"] and not img["name_derived"]
    assert (img["release"], img["subvariant"], img["arch"], img["channel"]) == (
        "41", "Cloud_Base", "x86_64", "candidate")
    assert {r: v["ami"] for r, v in img["aws"].items()} == record.row["msg"]["regions"]
    assert len(img["aws"]) == 22


def test_lower_case_legacy_names_merge_with_their_capitalised_spelling():
    legacy = [r.row for r in message_records()
              if r.row["msg"].get("image_name") == "fedora-cloud-base-rawhide-20140604.x86_64"]
    assert legacy, "the corpus holds 2014 lower-case fedimg messages"
    capital = {**legacy[0], "msg_id": "capitalised",
               "msg": {**legacy[0]["msg"],
                       "image_name": "Fedora-Cloud-Base-Rawhide-20140604.x86_64"}}
    records = image_records(fold([*legacy, capital]))
    assert [i["name"] for i in records] == ["Fedora-Cloud-Base-Rawhide-20140604.x86_64"]
    assert records[0]["release"] == "Rawhide" and records[0]["aws"]


def test_explain_lists_what_made_an_entry_and_what_was_not_used():
    rows = [r.row for r in message_records()]
    name = "Fedora-Cloud-Base-24-20160710.0.x86_64"
    broken = {"topic": "org.fedoraproject.prod.fedimg.image.upload", "msg_id": "broken",
              "timestamp": 1.0, "msg": {"image_name": name, "destination": "the moon",
                                        "status": "completed", "extra": {"id": "ami-1234abcd"}}}
    mentions = explain([*rows, broken], name.lower())
    used = [m for m in mentions if m.used]
    expected_used = [rid for rid, imgs in _expected_images().items()
                     if image_key(imgs[0][0]) == image_key(name)]
    assert len(used) == len(expected_used) == 5
    assert any("aws[eu-west-1]" in m.detail for m in used)
    (unused,) = [m for m in mentions if not m.used]
    assert unused.msg_id == "broken" and "expected an EC2 region" in unused.detail
    text = render(name, mentions)
    assert text.splitlines()[0] == (f"{name}: 5 message(s) made its entry, 1 mentioned it but "
                                    "were not used")
    assert explain(rows, "Fedora-Cloud-Base-99-20990101.0.x86_64") == []


@pytest.mark.slow
def test_sstream_query_finds_the_production_ami(tmp_path):
    state = fold(r.row for r in message_records())
    for path, doc in outputs.streams(image_records(state), state).items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(outputs.dumps(doc))
    query = pathlib.Path(sys.executable).parent / "sstream-query"

    def sq(*filters: str) -> list[dict]:
        proc = subprocess.run([sys.executable, str(query), "--json",
                               f"file://{tmp_path}/streams/v1/index.json", *filters],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    hits = sq("crsn=eu-west-1", "arch=x86_64", "release=41")
    assert [(h["id"], h["pubname"], h["architecture"]) for h in hits] == [
        ("ami-096b0e83fe32a74bb", "Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2",
         "x86_64")]
    assert len(sq("release=41", "datatype=image-ids")) == 22


@pytest.mark.slow
def test_explain_command_against_the_real_datagrepper(datagrepper_empty, tmp_path):
    """Real production and legacy records go through datanommer; --explain reads them back."""
    by_id = {r.id: r.row for r in message_records()}
    prod = by_id[PRODUCTION]
    dg = datagrepper_empty
    dg.publish_and_wait([(prod["topic"], prod["msg"], "2024-09-12T01:55:05+00:00")])
    legacy = by_id["messages/fedimg-fedmsg_meta#8"]  # 2014 lower-case name, an AMI in eu-west-1
    dg.insert_legacy(legacy["topic"], legacy["msg"], 1726106000.0, agent_name="fedimg")
    bad = {**legacy["msg"], "destination": "somewhere"}
    dg.insert_legacy(legacy["topic"], bad, 1726106001.0, agent_name="fedimg")
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text('[reporter]\nsince = "2024-09-10"\nwindow_days = 365\nretries = 1\n')

    def explain_cli(name: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "reporter.cli", "--config", str(cfg), "--datagrepper", dg.url,
             "--explain", name], capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)})

    proc = explain_cli(prod["msg"]["image_name"])
    assert proc.returncode == 0, proc.stderr
    head, line = proc.stdout.splitlines()
    assert head.endswith("1 message(s) made its entry, 0 mentioned it but were not used")
    assert line.startswith("used     2024-09-12T01:55:05Z ") and "aws[us-east-1]" in line
    proc = explain_cli("Fedora-Cloud-Base-Rawhide-20140604.x86_64")  # another case: same image
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "1 message(s) made its entry, 1 mentioned it but were not used" in lines[0]
    assert lines[1].startswith("used ") and "sets aws[eu-west-1]" in lines[1]
    assert lines[2].startswith("not used ") and "'somewhere', expected an EC2 region" in lines[2]
    assert not list(tmp_path.glob("*/images.json"))  # --explain writes nothing
    assert explain_cli("Fedora-Cloud-Base-99-1.1.x86_64").returncode == 1
