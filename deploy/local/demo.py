#!/usr/bin/env python3
"""``make demo``: the whole fedimg pipeline once, on the local stack, with a one-screen summary.

1. brings the stack up (``standins.local_stack``; reuses what runs),
2. ``fedimg-build`` starts the weekly job on the Koji stand-in (TLS client-cert login),
3. the stand-in "builds" it (real disk images) and announces ``buildsys.task.state.change``,
4. the uploader services (the real ``fedora-messaging consume`` processes, one per target) make
   AMIs in three regions of the moto server and the qcow2 + raw.tar.xz downloads,
5. a compose with one small container image per arch is announced; the containers service
   pushes both to the stack's registry and makes the multi-arch manifest list
   (deploy/local/demo_containers.py),
6. datanommer stores every message; ``fedimg-report`` rebuilds the site from datagrepper,
7. the summary is checked against what AWS, the download directory and the registry really hold.

Running it again on the same stack re-announces the same Koji task and compose (a duplicate
delivery, as the bus may do) and must leave exactly the same AMIs, files and registry tags. Every
wait is bounded; a failure ends with one line naming the step, and the log to read. Exit status
0 only if everything agreed.
"""

from __future__ import annotations

import collections
import datetime
import json
import pathlib
import re
import subprocess
import sys
import time
from typing import Any

import demo_containers  # beside this script (deploy/local/), which is sys.path[0]

from shared.files import sha256_file
from standins import REPO_ROOT, StandinError
from standins import local_stack as st
from standins.amqp import pika_connection
from standins.pidfiles import log_path, log_tail, running_pid
from standins.pipeline_config import JOB, REGIONS, weekly_job
from standins.pipeline_parts import missing_parts

BUILD_TIMEOUT = 180  # seconds for fedimg-build to finish
UPLOAD_TIMEOUT = 600  # seconds for the uploader services to handle the announcement
STORE_TIMEOUT = 60  # seconds for datanommer to store every message
REPORT_TIMEOUT = 300  # seconds for fedimg-report


class DemoFailed(RuntimeError):
    """One line for the operator (plus, optionally, a log excerpt after a newline)."""


def say(text: str = "") -> None:
    print(text, flush=True)


def run_step(what: str, argv: list[str], env: dict[str, str], timeout: float) -> str:
    """Run a command of the pipeline; its output is shown indented; failure ends the demo."""
    try:
        proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DemoFailed(f"{what} did not finish within {timeout:.0f}s") from None
    output = (proc.stdout + proc.stderr).strip()
    # the command's own lines, not the AMQP connection chatter of the libraries
    noise = (" INFO pika", " INFO twisted", " INFO fedora_messaging")
    lines = [ln for ln in output.splitlines() if not any(n in ln for n in noise)]
    for line in (lines if proc.returncode == 0 else output.splitlines())[-12:]:
        say(f"    | {line}")
    if proc.returncode != 0:
        raise DemoFailed(f"{what} exited with {proc.returncode} ({' '.join(argv[1:4])} ...)")
    return output


# ------------------------------------------------------------------------------------------
# Bus


def purge_watch(stack: st.Stack) -> None:
    conn = pika_connection()
    try:
        conn.channel().queue_purge(stack.queue("watch"))
    finally:
        conn.close()


def drain_watch(stack: st.Stack) -> list[tuple[str, str, Any]]:
    """(msg_id, topic, body) of everything published on the demo exchange since the purge."""
    out = []
    conn = pika_connection()
    try:
        ch = conn.channel()
        while True:
            method, props, raw = ch.basic_get(stack.queue("watch"), auto_ack=True)
            if method is None:
                return out
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            out.append((props.message_id, method.routing_key, body))
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------
# Koji


def koji_session(stack: st.Stack) -> Any:
    import koji

    return koji.ClientSession(stack.koji_hub, opts={
        "serverca": str(stack.ca_cert), "timeout": 30, "max_retries": 2, "retry_interval": 1,
        "anon_retry": True})


def find_weekly_task(stack: st.Stack, date: datetime.date) -> dict[str, Any]:
    """The image task fedimg-build started (or found) for the demo job on ``date``."""
    job = weekly_job(st.ARCHES)
    release = f"weekly.{date:%Y%m%d}"
    start = datetime.datetime.combine(date, datetime.time(), datetime.UTC).timestamp()
    tasks = koji_session(stack).listTasks(
        opts={"method": job["method"], "decode": True, "createdAfter": start},
        queryOpts={"order": "-id"})
    for task in tasks:
        req = task.get("request") or []
        if (len(req) >= 6 and req[0] == job["image_name"] and req[1] == job["version"]
                and isinstance(req[-1], dict) and req[-1].get("release") == release):
            return task
    raise DemoFailed(f"fedimg-build left no {job['method']} task for {job['image_name']} "
                     f"{job['version']} {release} on the Koji stand-in")


def finish_task(stack: st.Stack, task_id: int) -> dict[str, Any]:
    import requests

    resp = requests.post(f"{stack.koji_control}/finish/{task_id}", timeout=120)
    if resp.status_code != 200:
        raise DemoFailed(f"the Koji stand-in could not finish task {task_id}: {resp.text}")
    return resp.json()


# ------------------------------------------------------------------------------------------
# Waiting for the uploader services


def wait_consumed(stack: st.Stack, msg_id: str, timeout: float) -> None:
    """Until every uploader service logged that it consumed (acked) ``msg_id``."""
    ok = re.compile(rf"Successfully consumed message from topic \S+ \(message id {msg_id}\)")
    dropped = f"message id {msg_id} be dropped"
    pending = {u.name for u in st.uploaders(stack)}
    deadline = time.monotonic() + timeout
    while pending:
        for name in sorted(pending):
            log = log_path(stack, name).read_text(errors="replace")
            if ok.search(log):
                pending.discard(name)
                say(f"  {name}: handled the announcement")
            elif dropped in log:
                raise DemoFailed(f"{name} dropped the announcement; see "
                                 f"{log_path(stack, name)}:\n{log_tail(stack, name)}")
            elif running_pid(stack, name) is None:
                raise DemoFailed(f"{name} died; see {log_path(stack, name)}:\n"
                                 f"{log_tail(stack, name)}")
        if pending and time.monotonic() > deadline:
            name = sorted(pending)[0]
            raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {', '.join(pending)} "
                             f"to handle message {msg_id}; {log_path(stack, name)} ends:\n"
                             f"{log_tail(stack, name)}")
        time.sleep(0.2)


def wait_stored(stack: st.Stack, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Until datagrepper serves every one of ``ids``; returns the stored messages."""
    import requests

    http = requests.Session()
    http.headers["Accept"] = "application/json"
    stored: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while True:
        for msg_id in ids:
            if msg_id in stored:
                continue
            resp = http.get(f"{stack.datagrepper_url}/id", params={"id": msg_id}, timeout=10)
            if resp.status_code == 200:
                stored[msg_id] = resp.json()
        if len(stored) == len(ids):
            return [stored[i] for i in ids]
        if time.monotonic() > deadline:
            missing = [i for i in ids if i not in stored]
            raise DemoFailed(f"datanommer did not store {len(missing)} of {len(ids)} messages "
                             f"within {timeout:.0f}s (e.g. {missing[0]}); see "
                             f"{log_path(stack, 'datanommer')}")
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------
# What AWS, the download directory and the report hold


def aws_images(stack: st.Stack) -> dict[str, list[dict[str, Any]]]:
    """region -> the AMIs our account owns there (straight from the moto server)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(aws_access_key_id="demo", aws_secret_access_key="demo")
    cfg = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                 read_timeout=30)
    out = {}
    for region in REGIONS:
        ec2 = session.client("ec2", region_name=region, endpoint_url=stack.moto_url, config=cfg)
        out[region] = ec2.describe_images(Owners=["self"])["Images"]
    return out


def download_files(stack: st.Stack) -> dict[str, pathlib.Path]:
    """relative path -> file, for every file under the download destination."""
    root = stack.downloads
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def check(stack: st.Stack, report: dict[str, Any], amis: dict[str, list[dict[str, Any]]],
          files: dict[str, pathlib.Path]) -> list[str]:
    """Every disagreement between the report, AWS and the download directory (empty: none)."""
    problems = []
    images = report.get("images", [])
    names = collections.Counter(i.get("name") for i in images)
    problems += [f"report lists image {n} {c} times" for n, c in names.items() if c > 1]
    # AWS: exactly one AMI per image name per region, and the report names exactly those.
    reported = {(r, (v or {}).get("ami")) for i in images for r, v in (i.get("aws") or {}).items()}
    for region, found in amis.items():
        per_name = collections.Counter(a.get("Name") for a in found)
        problems += [f"{region}: {c} AMIs named {n}" for n, c in per_name.items() if c > 1]
        for ami in found:
            if (region, ami["ImageId"]) not in reported:
                problems.append(f"{region}: {ami['ImageId']} ({ami.get('Name')}) is not in the "
                                "report")
    real = {(r, a["ImageId"]) for r, found in amis.items() for a in found}
    problems += [f"{r}: report says {a}, AWS has no such AMI" for r, a in reported - real]
    # Downloads: every reported file exists with that size and sha256; no unreported image file.
    base = None
    for image in images:
        for d in image.get("downloads") or []:
            url = d.get("url", "")
            rel = url.split("/downloads/", 1)[-1] if "/downloads/" in url else None
            path = files.get(rel) if rel else None
            if path is None:
                problems.append(f"report lists {url}, which is not in {stack.downloads}")
                continue
            base = base or url[: -len(rel)]
            if d.get("size") is not None and d["size"] != path.stat().st_size:
                problems.append(f"{rel}: report size {d['size']}, file {path.stat().st_size}")
            if d.get("sha256") and d["sha256"] != sha256_file(path):
                problems.append(f"{rel}: report sha256 differs from the file's")
    listed = {d.get("url", "").split("/downloads/", 1)[-1]
              for i in images for d in (i.get("downloads") or [])}
    for rel in files:
        if "CHECKSUM" not in rel and rel not in listed:
            problems.append(f"{rel} is in the download directory but not in the report")
    return problems


# ------------------------------------------------------------------------------------------


def inventory(amis: dict[str, list[dict[str, Any]]],
              files: dict[str, pathlib.Path], tags: dict[str, str]) -> dict[str, Any]:
    """What this run left behind, to compare with the next run on the same stack."""
    return {"amis": sorted(f"{r} {a.get('Name')} {a['ImageId']}" for r, found in amis.items()
                           for a in found),
            "files": sorted(f"{rel} {sha256_file(p)}" for rel, p in files.items()),
            "tags": sorted(f"{tag} {digest}" for tag, digest in tags.items())}


def compare(previous: dict[str, Any] | None, now: dict[str, Any], run_no: int) -> str:
    if previous is None:
        return "First run on this stack: run `make demo` again to see a repeated announcement " \
               "change nothing."
    if previous == now:
        return (f"Same {len(now['amis'])} AMIs, {len(now['files'])} files (same bytes) and "
                f"{len(now['tags'])} registry tags (same digests) as run {run_no - 1}: the "
                "repeated announcements changed nothing.")
    before = [x for k in ("amis", "files", "tags") for x in previous.get(k, [])]
    added = sorted(set(now["amis"] + now["files"] + now["tags"]) - set(before))
    return f"Changed since run {run_no - 1}: {', '.join(added) or 'items removed'}"


def summary(stack: st.Stack, report: dict[str, Any], amis: dict[str, list[dict[str, Any]]],
            files: dict[str, pathlib.Path], topics: collections.Counter, task_id: int,
            run_no: int, seconds: float, versus: str, compose: str) -> str:
    lines = [f"fedimg demo: OK in {seconds:.0f}s (run {run_no} on this stack; Koji task "
             f"{task_id})", ""]
    lines.append(f"site        {stack.www_url}/site/index.html   ({stack.site})")
    lines.append(f"history     {stack.datagrepper_url}/raw?category=fedimg&order=asc")
    lines.append("")
    lines.append("AMIs (moto server " + stack.moto_url + "):")
    names = sorted({a.get("Name", "?") for found in amis.values() for a in found})
    width = max([len(n) for n in names] + [5])
    lines.append(f"  {'image':{width}}  " + "  ".join(f"{r:21}" for r in REGIONS))
    for name in names:
        cells = []
        for region in REGIONS:
            ids = [a["ImageId"] for a in amis[region] if a.get("Name") == name]
            cells.append(f"{','.join(ids) or '-':21}")
        lines.append(f"  {name:{width}}  " + "  ".join(cells))
    lines.append("")
    lines.append(f"Downloads ({stack.downloads}, served at {stack.www_url}/downloads/):")
    for rel, path in files.items():
        lines.append(f"  {path.stat().st_size:>12,}  {rel}")
    lines.append("")
    lines += demo_containers.summary_lines(stack, compose)
    lines.append("")
    lines.append("Topics seen this run (every one stored by datanommer, served by datagrepper):")
    for topic, n in sorted(topics.items()):
        lines.append(f"  {n:3}  {topic}")
    lines.append("")
    images = report.get("images", [])
    failures = sum(len(i.get("failures") or []) for i in images)
    lines.append(f"Report: {len(images)} image(s) in images.json; it agrees with AWS, the "
                 "download directory and the registry" + (f" ({failures} failure(s) of earlier "
                                                         "attempts in "
                                         "the history)." if failures else "."))
    lines.append(versus)
    lines.append("Stop the stack: make demo-stop   (state stays in "
                 f"{stack.root}; logs in {stack.root}/logs)")
    return "\n".join(lines)


def main() -> int:
    t0 = time.monotonic()
    stack = st.Stack.from_env()
    missing = missing_parts()
    if missing:
        for line in missing:
            say(f"demo: missing part: {line}")
        say("demo: FAILED: the pipeline is not complete on this checkout (see above)")
        return 1
    try:
        say("== 1/7 local stack")
        st.up(stack, say=lambda s: say("  " + s))
        purge_watch(stack)
        runs = stack.root / "runs"
        run_no = int(runs.read_text()) + 1 if runs.exists() else 1
        date = datetime.datetime.now(datetime.UTC).date()

        say(f"== 2/7 fedimg-build --date {date} {JOB}")
        env = stack.env(FEDORA_MESSAGING_CONF=str(stack.publisher_config))
        run_step("fedimg-build", [sys.executable, "-m", "trigger.cli", "--config",
                                  str(stack.fedimg_config), "--date", str(date), JOB],
                 env, BUILD_TIMEOUT)
        task = find_weekly_task(stack, date)

        say(f"== 3/7 Koji finishes task {task['id']} and announces it")
        done = finish_task(stack, task["id"])
        images = [f for f in done["files"] if f.endswith(".raw.xz")]
        say(f"  {'built' if done['filled'] else 'already built'}: {', '.join(images)}")
        say(f"  announced {st.TOPIC_PREFIX}.{done['topic']} (message id {done['message_id']})")

        say("== 4/7 uploader services: AWS (3 regions) and downloads")
        wait_consumed(stack, done["message_id"], UPLOAD_TIMEOUT)

        compose = demo_containers.compose_id(date)
        say(f"== 5/7 compose {compose} with container images, to the registry")
        made = demo_containers.make_compose(stack, compose)
        say(f"  {', '.join(made['files'])}")
        say(f"  announced {st.TOPIC_PREFIX}.{made['topic']} (message id {made['message_id']})")
        wait_consumed(stack, made["message_id"], UPLOAD_TIMEOUT)

        say("== 6/7 datanommer stores every message")
        seen = drain_watch(stack)
        stored = wait_stored(stack, [m[0] for m in seen], STORE_TIMEOUT)
        topics = collections.Counter(m["topic"] for m in stored)
        say(f"  {len(stored)} message(s) of this run are in datagrepper")

        say("== 7/7 fedimg-report from datagrepper")
        run_step("fedimg-report", [sys.executable, "-m", "reporter.cli", "--config",
                                   str(stack.fedimg_config), "--datagrepper",
                                   stack.datagrepper_url, "--output", str(stack.site)],
                 stack.env(), REPORT_TIMEOUT)
        report_path = stack.site / "images.json"
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError) as exc:
            raise DemoFailed(f"fedimg-report wrote no readable {report_path}: {exc}") from None
        amis = aws_images(stack)
        files = download_files(stack)
        problems = check(stack, report, amis, files)
        problems += demo_containers.check(stack, compose, report)
        if not any(amis.values()):
            problems.append("AWS holds no AMI at all")
        if not files:
            problems.append(f"{stack.downloads} holds no file at all")
        if problems:
            for p in problems:
                say(f"  MISMATCH: {p}")
            raise DemoFailed(f"{len(problems)} disagreement(s) between the report, AWS, "
                             "the downloads and the registry")
        last = stack.root / "last-run.json"
        now = inventory(amis, files, demo_containers.registry_state(stack))
        previous = json.loads(last.read_text()) if run_no > 1 and last.exists() else None
        versus = compare(previous, now, run_no)
        last.write_text(json.dumps(now))
        runs.write_text(str(run_no))
        text = summary(stack, report, amis, files, topics, task["id"], run_no,
                       time.monotonic() - t0, versus, compose)
        (stack.root / "summary.txt").write_text(text + "\n")
        say()
        say(text)
        return 0
    except (DemoFailed, StandinError, demo_containers.ContainerDemoFailed) as exc:
        say(f"demo: FAILED: {exc}")
        return 1
    except TimeoutError as exc:
        say(f"demo: FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
