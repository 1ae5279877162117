"""fedimg-upload over the real Koji and Pungi records of tests/data/real.

Each real shape goes through `fedimg-upload --dry-run --json` against the Koji stand-in (for
tasks) or served images.json (for composes) and lists what a release engineer expects: every
Cloud Base image an allowed owner built, with its release and a channel, and the AWS target only
for the arches EC2 runs.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from shared.errors import BadInput, Unwanted
from shared.images import compose_version
from tests.real_corpus import composes, koji_records, message_records
from tests.uploader.conftest import REPO_ROOT, config_dict, toml_text
from uploader.intake.route import request_from_message

TARGETS = {"uploader": {"targets": ["aws", "downloads"]}}
EC2_ARCHES = {"x86_64", "aarch64"}

# What the 2014-2015 task outputs are, read by a release engineer (release, subvariant,
# channel, and the rule when the name does not say the channel).
KOJI_TASKS = {
    6925144: ("Rawhide", "Cloud_Base", "nightly", None),
    7049442: ("Rawhide", "Cloud_Base", "nightly", None),
    7123868: ("Rawhide", "Cloud_Base", "nightly", None),
    7127840: ("Rawhide", "Cloud_Base", "nightly", None),
    7577981: ("21", "Cloud_Base", "nightly", "scratch Koji task"),
    9203308: ("22", "Cloud_Base", "candidate", None),
    9203313: ("22", "Atomic", "candidate", None),
}


def _dry_run(koji_hub, tmp_path, *args, **sections) -> tuple[int, list[dict], str]:
    cfg = tmp_path / "fedimg.toml"
    cfg.write_text(toml_text(config_dict(koji_hub, tmp_path / "work", **{**TARGETS,
                                                                          **sections})))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("FEDORA_MESSAGING_CONF", None)
    proc = subprocess.run([sys.executable, "-m", "uploader.cli", "--config", str(cfg), *args,
                           "--dry-run", "--json"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def _expected_targets(arch: str) -> list[str]:
    return ["aws", "downloads"] if arch in EC2_ARCHES else ["downloads"]


@pytest.mark.slow
def test_the_f23_scratch_task_lists_both_arches_with_aws_only_where_ec2_runs(koji_hub,
                                                                              tmp_path):
    (real,) = koji_records("task-12387273-pungi-tests")
    results = real["getTaskResult"]
    arches = [results[c]["arch"] for c in sorted(results)]
    files = {results[c]["arch"]: {f: None for f in results[c]["files"]} for c in results}
    first = results[sorted(results)[0]]
    tid = koji_hub.add_image_task(name=first["name"], version=first["version"],
                                  release=first["release"], arches=arches, files=files,
                                  extra_outputs=False)
    code, rows, err = _dry_run(koji_hub, tmp_path, "--koji-task", str(tid))
    assert code == 0, err
    raw_xz = sorted(f for r in results.values() for f in r["files"] if f.endswith(".raw.xz"))
    assert sorted(r["source_url"].rsplit("/", 1)[1] for r in rows) == raw_xz
    for r in rows:
        assert (r["release"], r["subvariant"], r["channel"], r["channel_inferred"]) == (
            "23", "Cloud_Base", "nightly", "scratch Koji task")
        assert r["targets"] == _expected_targets(r["arch"])
    assert {r["arch"] for r in rows} == {"i386", "x86_64"}
    assert "aws left out: it does not take i386 images" in err


@pytest.mark.slow
def test_koji_tasks_of_2014_and_2015_are_all_wanted(koji_hub, tmp_path):
    records = koji_records("tasks-fedimg-tests")
    assert sorted(r["task_id"] for r in records) == sorted(KOJI_TASKS)
    subvariants = {"subvariants": ["Cloud_Base", "Atomic"]}
    for record in records:
        filename = record["output_url"].rsplit("/", 1)[1]
        assert "/work/tasks/" in record["output_url"]  # task outputs: scratch builds
        arch = filename.split(".")[-3]
        # the records keep only the output file; name/version/release of the task request
        # are not known, so the stand-in's task says none (the file name must suffice)
        tid = koji_hub.add_image_task(name="", version="", release="", arches=[arch],
                                      files={arch: {filename: None}}, extra_outputs=False)
        code, rows, err = _dry_run(koji_hub, tmp_path, "--koji-task", str(tid),
                                   uploader={**TARGETS["uploader"], **subvariants})
        assert code == 0, (record["task_id"], err)
        (row,) = rows
        assert row["source_url"].endswith("/" + filename)
        release, subvariant, channel, rule = KOJI_TASKS[record["task_id"]]
        assert (row["release"], row["subvariant"], row["arch"], row["channel"],
                row["channel_inferred"]) == (release, subvariant, arch, channel, rule)
        assert row["targets"] == ["aws", "downloads"]


def _layout(compose_id: str) -> str:
    release, _ = compose_version(compose_id)
    return f"{release.lower()}/{compose_id}"


@pytest.mark.slow
@pytest.mark.parametrize("compose_id", sorted(composes()))
def test_every_real_compose_lists_its_cloud_base_disk_images(koji_hub, tmp_path, compose_id):
    images = composes()[compose_id]
    koji_hub.add_file(f"compose/{_layout(compose_id)}/compose/metadata/images.json",
                      json.dumps(images).encode())
    expected = {}
    for variant in images["payload"]["images"].values():
        for entries in variant.values():
            for e in entries:
                if e["subvariant"] == "Cloud_Base" and e["type"] == "raw-xz":
                    expected[pathlib.PurePosixPath(e["path"]).name] = e
    code, rows, err = _dry_run(koji_hub, tmp_path, "--compose", compose_id)
    assert code == (0 if expected else 1), err
    assert sorted(r["source_url"].rsplit("/", 1)[1] for r in rows) == sorted(expected)
    release = compose_version(compose_id)[0]
    compose_type = images["payload"]["compose"]["type"]
    for r in rows:
        entry = expected[r["source_url"].rsplit("/", 1)[1]]
        assert (r["release"], r["subvariant"], r["arch"]) == (release, "Cloud_Base",
                                                              entry["arch"])
        assert r["channel"] == ("nightly" if compose_type == "nightly" else "candidate")
        assert (r["sha256"], r["size"]) == (entry["checksums"]["sha256"], entry["size"])
        assert r["targets"] == _expected_targets(r["arch"])


def test_real_koji_and_pungi_messages_route_as_a_release_engineer_expects():
    owners = ["releng"]
    seen = set()
    for record in message_records():
        if record.family not in ("koji", "pungi"):
            continue
        topic, body = record.row["topic"], record.row["msg"]
        try:
            request = request_from_message(topic, body, owners)
        except (Unwanted, BadInput) as exc:
            request, reason = None, str(exc)
        if topic.endswith("pungi.compose.status.change") and body["status"] in (
                "FINISHED", "FINISHED_INCOMPLETE"):
            assert (request.kind, request.ident) == ("compose", body["compose_id"])
        elif topic.endswith("buildsys.build.state.change") and body.get("new") == 1 and (
                body.get("owner") in owners):
            assert (request.kind, request.ident) == ("build", body["build_id"])
        else:
            assert request is None and reason, record.id
        seen.add(request.kind if request else "ignored")
    assert seen == {"compose", "build", "ignored"}
