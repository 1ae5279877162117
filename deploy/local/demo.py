#!/usr/bin/env python3
"""``make demo``: the whole fedimg pipeline on the local stack, so the report shows every section.

1. brings the stack up (``standins.local_stack``; reuses what runs),
2. ``fedimg-build`` starts the weekly job (today) and the nightly job (yesterday and today) on the
   Koji stand-in (TLS client-cert login),
3. the stand-in "builds" them (real disk images) and announces ``buildsys.task.state.change``,
4. the stand-in's Pungi finishes two production composes of release 44 (two release candidates,
   respins 0 and 1, each with a disk image, a Generic qcow2, an Azure vhdfixed.xz, a GCE tar.gz
   and a container image per arch) and announces ``pungi.compose.status.change``,
5. the uploader services (the real ``fedora-messaging consume`` processes, one per target) make
   AMIs in three regions of the moto server and the qcow2 + raw.tar.xz downloads of each image,
   put each compose's Generic qcow2 into two real Glance clouds, push each compose's
   container images and manifest list to the stack's registry (deploy/local/demo_containers.py),
   and make each compose's Azure image a gallery image version replicated to three regions and
   its GCE image a GCE image in its family (azurite, gcp-storage-emulator and the gallery and
   GCE stand-ins; deploy/local/demo_clouds.py),
6. release engineering promotes the second candidate with ``fedimg-announce promote`` and QE posts
   results with ``fedimg-announce qe``,
7. datanommer stores every message; ``fedimg-report`` rebuilds the site from datagrepper; the
   report is checked against what AWS, the download directory, the registry, the gallery and
   GCE really hold, and the site for
   a locator with a release, candidate, weekly and nightly section, a history page with two
   nightlies of one family, and valid feeds.

It ends with the URLs of the locator, a history page and the feeds. Running it again on the same
stack re-announces the same Koji tasks and composes (duplicate deliveries, as the bus may make)
and must leave exactly the same AMIs, files, Glance images, registry tags, gallery versions and
GCE images. Every wait is bounded; a failure ends with one
line naming the step, and the log to read. Exit status 0 only if everything agreed.
"""

from __future__ import annotations

import collections
import datetime
import json
import re
import subprocess
import sys
import time
from typing import Any

import demo_clouds  # beside this script (deploy/local/), which is sys.path[0]
import demo_containers

from standins import REPO_ROOT, StandinError, cloud_stack
from standins import local_stack as st
from standins.amqp import pika_connection
from standins.demo_checks import (
    aws_images,
    check,
    check_glance,
    check_site,
    compare,
    download_files,
    glance_images,
    inventory,
)
from standins.glance import glance_available
from standins.pidfiles import log_path, log_tail, running_pid
from standins.pipeline_config import JOB, NIGHTLY_JOB, REGIONS, nightly_job, weekly_job
from standins.pipeline_parts import missing_parts

BUILD_TIMEOUT = 180  # seconds for fedimg-build to finish
UPLOAD_TIMEOUT = 600  # seconds for the uploader services to handle one announcement
STORE_TIMEOUT = 60  # seconds for datanommer to store every message
REPORT_TIMEOUT = 300  # seconds for fedimg-report
ANNOUNCE_TIMEOUT = 60  # seconds for fedimg-announce
RC_RELEASE = "44"  # the release the demo's candidates are of (a number, as production composes)
QE_URL = "https://openqa.fedoraproject.org/tests/overview?distri=fedora&version=44"


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
# Koji and Pungi


def koji_session(stack: st.Stack) -> Any:
    import koji

    return koji.ClientSession(stack.koji_hub, opts={
        "serverca": str(stack.ca_cert), "timeout": 30, "max_retries": 2, "retry_interval": 1,
        "anon_retry": True})


def find_task(stack: st.Stack, job: dict[str, Any], release: str,
              date: datetime.date) -> dict[str, Any]:
    """The image task fedimg-build started (or found) for ``job`` as ``release``."""
    start = datetime.datetime.combine(date, datetime.time(), datetime.UTC).timestamp()
    tasks = koji_session(stack).listTasks(
        opts={"method": job["method"], "decode": True, "createdAfter": start - 86400},
        queryOpts={"order": "-id"})
    for task in tasks:
        req = task.get("request") or []
        if (len(req) >= 6 and req[0] == job["image_name"] and req[1] == job["version"]
                and isinstance(req[-1], dict) and req[-1].get("release") == release):
            return task
    raise DemoFailed(f"fedimg-build left no {job['method']} task for {job['image_name']} "
                     f"{job['version']} {release} on the Koji stand-in")


def control(stack: st.Stack, path: str) -> dict[str, Any]:
    """POST to the Koji stand-in's control port: finish a task or a compose, and announce it."""
    import requests

    resp = requests.post(f"{stack.koji_control}/{path}", timeout=120)
    if resp.status_code != 200:
        raise DemoFailed(f"the Koji stand-in could not {path}: {resp.text}")
    return resp.json()


# ------------------------------------------------------------------------------------------
# Waiting for the uploader services and datanommer


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
            elif dropped in log:
                raise DemoFailed(f"{name} dropped message {msg_id}; see "
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


def summary(stack: st.Stack, report: dict[str, Any], amis: dict[str, list[dict[str, Any]]],
            files: dict[str, Any], glance: dict[str, list[dict[str, Any]]],
            topics: collections.Counter, history_page: str | None, run_no: int, seconds: float,
            versus: str, containers: list[str], clouds: list[str]) -> str:
    site = f"{stack.www_url}/site"
    lines = [f"fedimg demo: OK in {seconds:.0f}s (run {run_no} on this stack)", ""]
    lines.append(f"locator     {site}/index.html   ({stack.site})")
    lines.append(f"history     {site}/{history_page}")
    lines.append(f"feeds       {site}/feeds/all.atom  (and " + ", ".join(
        f"{c}.atom" for c in ("release", "candidate", "weekly", "nightly")) + ")")
    lines.append(f"datagrepper {stack.datagrepper_url}/raw?category=fedimg&order=asc")
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
    lines.append("Glance images (" + ", ".join(f"{c} {u}" for c, u in stack.glance_urls.items())
                 + "):")
    for cloud, images in glance.items():
        for image in sorted(images, key=lambda i: i["name"]):
            lines.append(f"  {cloud}  {image['name']}  {image['id']}  {image['visibility']}")
    lines.append("")
    lines.append(f"Downloads: {len(files)} files in {stack.downloads}, served at "
                 f"{stack.www_url}/downloads/")
    lines += containers
    lines += clouds
    lines.append("Messages of this run by kind (every one stored by datanommer, served by "
                 "datagrepper; routing words left out):")
    kinds: collections.Counter = collections.Counter()
    for topic, n in topics.items():
        kinds[re.sub(r"^(.*?\.v1(?:\.aws|\.downloads|\.openstack|\.container|\.azure|\.gcp)?)"
                     r"\..*$", r"\1",
                     topic.removeprefix(st.TOPIC_PREFIX + "."))] += n
    for kind, n in sorted(kinds.items()):
        lines.append(f"  {n:3}  {kind}")
    lines.append("")
    images = report.get("images", [])
    channels = collections.Counter(i.get("channel") for i in images)
    lines.append(f"Report: {len(images)} images (" + ", ".join(
        f"{n} {c}" for c, n in sorted(channels.items(), key=str)) + "); it agrees with AWS, "
        "Glance, the download directory, the registry, the Azure gallery and GCE, and the site "
        "shows every channel.")
    lines.append(versus)
    lines.append("Stop the stack: make demo-stop   (state stays in "
                 f"{stack.root}; logs in {stack.root}/logs)")
    return "\n".join(lines)


def build(stack: st.Stack, today: datetime.date) -> list[dict[str, Any]]:
    """Steps 2 and 3: start the Koji builds, finish them; returns what each finish announced."""
    env = stack.env(FEDORA_MESSAGING_CONF=str(stack.publisher_config))
    builds = [(weekly_job(st.ARCHES), JOB, today, f"weekly.{today:%Y%m%d}")]
    for day in (today - datetime.timedelta(days=1), today):
        builds.append((nightly_job(st.ARCHES), NIGHTLY_JOB, day, f"{day:%Y%m%d}.n.0"))
    say(f"== 2/7 fedimg-build: {JOB} for {today}, {NIGHTLY_JOB} for the day before and {today}")
    tasks = []
    for job, name, day, release in builds:
        run_step("fedimg-build", [sys.executable, "-m", "trigger.cli", "--config",
                                  str(stack.fedimg_config), "--date", str(day), name],
                 env, BUILD_TIMEOUT)
        tasks.append(find_task(stack, job, release, day))
    say("== 3/7 Koji finishes the tasks and announces each")
    done = []
    for task in tasks:
        finished = control(stack, f"finish/{task['id']}")
        say(f"  task {task['id']}: {'built' if finished['filled'] else 'already built'} "
            f"{', '.join(f for f in finished['files'])}")
        done.append(finished)
    return done


def announce(stack: st.Stack, verb: str, name: str, *extra: str) -> str:
    """fedimg-announce VERB NAME ...; returns the id of the message it published."""
    env = stack.env(FEDORA_MESSAGING_CONF=str(stack.publisher_config))
    out = run_step(f"fedimg-announce {verb}", [sys.executable, "-m", "reporter.verdicts", verb,
                                               name, "--agent", "demo", *extra],
                   env, ANNOUNCE_TIMEOUT)
    found = re.search(r"^published (\S+):", out, re.MULTILINE)
    if found is None:
        raise DemoFailed(f"fedimg-announce {verb} {name} did not say what it published")
    return found[1]


def main() -> int:
    t0 = time.monotonic()
    stack = st.Stack.from_env()
    missing = missing_parts() + [m for m in [glance_available(), cloud_stack.missing()] if m]
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
        today = datetime.datetime.now(datetime.UTC).date()

        announced = build(stack, today)
        say(f"== 4/7 Pungi finishes two production composes of Fedora {RC_RELEASE} "
            "(release candidates)")
        candidates = [f"Fedora-{RC_RELEASE}-{today:%Y%m%d}.{respin}" for respin in (0, 1)]
        for compose_id in candidates:
            finished = control(stack, f"compose/{compose_id}")
            say(f"  {compose_id}: {', '.join(finished['files'])}")
            announced.append(finished)

        say("== 5/7 uploader services: AWS (3 regions), downloads, OpenStack (2 Glance clouds), "
            "the registry, Azure (a gallery, 3 regions) and Google Cloud, for each announcement")
        for finished in announced:
            wait_consumed(stack, finished["message_id"], UPLOAD_TIMEOUT)
            say(f"  handled {finished['topic']} {finished['message_id']}")

        say("== 6/7 release engineering promotes the second candidate; QE reports")
        rc1, rc2 = (f"Fedora-Cloud-Base-{c.split('-', 1)[1]}" for c in candidates)
        for arch in st.ARCHES:
            announce(stack, "promote", f"{rc2}.{arch}", "--note",
                     f"Fedora {RC_RELEASE} (demo release)")
        announce(stack, "qe", f"{rc2}.x86_64", "--result", "passed", "--suite",
                 "openqa-cloud", "--url", QE_URL)
        announce(stack, "qe", f"{rc1}.x86_64", "--result", "failed", "--suite",
                 "openqa-cloud", "--url", QE_URL, "--note", "boot test timed out")

        say("== 7/7 datanommer stores every message; fedimg-report from datagrepper")
        seen = drain_watch(stack)
        stored = wait_stored(stack, [m[0] for m in seen], STORE_TIMEOUT)
        topics = collections.Counter(m["topic"] for m in stored)
        say(f"  {len(stored)} message(s) of this run are in datagrepper")
        # no --config: the defaults serve the reporter (it only needs where datagrepper is)
        env = {k: v for k, v in stack.env().items() if k != "FEDIMG_CONFIG"}
        run_step("fedimg-report", [sys.executable, "-m", "reporter.cli", "--datagrepper",
                                   stack.datagrepper_url, "--output", str(stack.site)],
                 env, REPORT_TIMEOUT)
        report_path = stack.site / "images.json"
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError) as exc:
            raise DemoFailed(f"fedimg-report wrote no readable {report_path}: {exc}") from None
        amis = aws_images(stack)
        files = download_files(stack)
        glance = glance_images(stack)
        problems = check(stack, report, amis, files) + check_glance(report, glance)
        site_problems, history_page = check_site(stack.site, report)
        problems += site_problems
        problems += demo_containers.check(stack, candidates, report)
        versions = cloud_stack.gallery_versions(stack)
        gce = cloud_stack.gce_images(stack)
        problems += demo_clouds.check(stack, candidates, report, versions, gce)
        if not any(amis.values()):
            problems.append("AWS holds no AMI at all")
        if not files:
            problems.append(f"{stack.downloads} holds no file at all")
        if not all(glance.values()):
            problems.append("a Glance cloud holds no image at all")
        if problems:
            for p in problems:
                say(f"  MISMATCH: {p}")
            raise DemoFailed(f"{len(problems)} disagreement(s) between the report, the site, "
                             "AWS, Glance, the downloads, the registry, Azure and GCE")
        last = stack.root / "last-run.json"
        now = {**inventory(amis, files, glance, demo_containers.registry_state(stack)),
               **demo_clouds.inventory(versions, gce)}
        previous = json.loads(last.read_text()) if run_no > 1 and last.exists() else None
        versus = compare(previous, now, run_no)
        last.write_text(json.dumps(now))
        runs.write_text(str(run_no))
        text = summary(stack, report, amis, files, glance, topics, history_page, run_no,
                       time.monotonic() - t0, versus, demo_containers.summary_lines(stack),
                       demo_clouds.summary_lines(stack, versions, gce))
        (stack.root / "summary.txt").write_text(text + "\n")
        say()
        say(text)
        return 0
    except (DemoFailed, StandinError) as exc:
        say(f"demo: FAILED: {exc}")
        return 1
    except TimeoutError as exc:
        say(f"demo: FAILED: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
