"""Reporter benchmark: fold speed; requests of a full vs an incremental run; runs at scale.

    .venv/bin/python bench/report_bench.py [--fold-messages 100000] [--history 20000] [--new 10]
    .venv/bin/python bench/report_bench.py --scale 1000000 [--scale-new 100] [--old-rev REV]

1. fold: 100k synthetic rows of all three families (AWS regions, downloads, failures, QE,
   promotions, fedora_image_uploader, legacy fedimg), timed end to end (read + fold + records).
   Target: <= 2 s.
2. requests: a synthetic history of 20k rows served over real HTTP on loopback with datagrepper
   1.1.0's paging semantics (standins.datagrepper_emulator); a full run with the default
   [reporter] settings, then 10 new messages and an incremental run; both counted.
3. scale (only with --scale N): standins.synthetic_history's N messages (2014 to an hour ago)
   served by the emulator in a process of its own; ``fedimg-report`` runs as a child process
   (wall time and the child's peak RSS): a full run, then --scale-new messages more and an
   incremental run; then the same two runs of the reporter as it was at --old-rev (checked out
   with git archive), which reloaded and re-rendered all of its state every run.
   Targets: full <= 120 s and <= 1 GiB; incremental <= 5 s and <= 300 MiB.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import pathlib
import random
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlparse

from reporter.fold import fold, image_records
from reporter.run import run
from shared.config import ReporterConfig
from standins.datagrepper_emulator import RawHistory, row

P = "org.fedoraproject.prod."
REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1",
           "ap-south-1", "ap-northeast-1", "sa-east-1", "ca-central-1"]


def synthetic(n: int, start: float, span: float, seed: int = 7) -> list[dict]:
    """n rows over [start, start + span]; ~12 rows per image, like a real upload's messages."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        ts = float(int(start + span * i / n))
        img = i // 12
        day = time.strftime("%Y%m%d", time.gmtime(ts))
        arch = "x86_64" if img % 2 else "aarch64"
        name = f"Fedora-Cloud-Base-AmazonEC2-Rawhide-{day}.n.{img % 10}.{arch}"
        ident = {"name": name, "release": "Rawhide", "subvariant": "Cloud_Base", "arch": arch,
                 "channel": "nightly", "compose_id": None, "koji_task_id": 100000 + img,
                 "koji_build_id": None, "agent": "fedimg"}
        kind = i % 12
        mid = f"{i:08d}-{rnd.getrandbits(64):016x}"
        if kind < 7:
            r = REGIONS[kind]
            rows.append(row(mid, ts, P + f"fedimg.image.published.v1.aws.{r}",
                            {**ident, "region": r, "ami": f"ami-{i:017x}", "public": True}))
        elif kind == 7:
            rows.append(row(mid, ts, P + "fedimg.image.published.v1.downloads.qcow2", {
                **ident, "format": "qcow2", "url": f"https://dl.example.org/{name}.qcow2",
                "size": 500_000_000 + i, "sha256": f"{i:064x}"}))
        elif kind == 8:
            rows.append(row(mid, ts, P + "fedimg.image.failed.v1.aws", {
                **ident, "target": "aws", "destination": "ap-south-2", "error_kind": "aws",
                "error": "boom", "retryable": True}))
        elif kind == 9:
            rows.append(row(mid, ts, P + "fedimg.image.tested.v1.passed", {
                **ident, "result": "passed", "test_suite": "openqa", "agent": "openqa"}))
        elif kind == 10:
            rows.append(row(mid, ts, P + "fedora_image_uploader.published.v1.aws", {
                "architecture": arch, "compose_id": f"Fedora-40-{day}.n.0", "release": 40,
                "subvariant": "Cloud_Base", "image_name": "Fedora-Cloud-AmazonEC2",
                "regions": {r: f"ami-{i:08x}{j}" for j, r in enumerate(REGIONS[:3])}}))
        else:
            rows.append(row(mid, ts, P + "fedimg.image.copy", {
                "image_name": f"Fedora-Cloud-Base-24-{day}.0.x86_64", "status": "completed",
                "destination": "EC2 (eu-west-1)", "extra": {"id": f"ami-{i:08x}"},
                "compose": {"compose_id": f"Fedora-24-{day}.0"}}))
    return rows


def bench_fold(n: int) -> None:
    rows = synthetic(n, 1_600_000_000.0, 86400 * 365)
    random.Random(1).shuffle(rows)
    c0, t0 = time.process_time(), time.perf_counter()
    state = fold(rows)
    c1, t1 = time.process_time(), time.perf_counter()
    images = image_records(state)
    c2, t2 = time.process_time(), time.perf_counter()
    # CPU time too: on a shared machine the wall clock includes waiting for a core
    print(f"fold: {n} messages -> {len(images)} images, {state.skipped} skipped: "
          f"fold {t1 - t0:.2f} s + records {t2 - t1:.2f} s = {t2 - t0:.2f} s wall, "
          f"CPU fold {c1 - c0:.2f} s + records {c2 - c1:.2f} s (target <= 2 s) "
          f"[{n / (t2 - t0):,.0f} msg/s wall]")


class _Handler(http.server.BaseHTTPRequestHandler):
    history: RawHistory

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status, body = self.history.answer(parse_qs(urlparse(self.path).query))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def bench_requests(n: int, new: int) -> None:
    now = time.time()
    span = 86400 * 365 * 2  # two years of history ending an hour ago
    history = RawHistory(synthetic(n, now - span - 3600, span))
    _Handler.history = history
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cfg = ReporterConfig(datagrepper=url)  # the defaults: since 2014-01-01, 90-day windows
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = pathlib.Path(tmp) / "site"
            t0 = time.perf_counter()
            full = run(out, url, cfg, now=now)
            t1 = time.perf_counter()
            history.add(synthetic(new, now - 60, 30, seed=99))
            t2 = time.perf_counter()
            inc = run(out, url, cfg, now=now + 1)
            t3 = time.perf_counter()
            print(f"requests: full run over {n} messages: {full.requests} requests, "
                  f"{full.fetched} rows, {t1 - t0:.1f} s")
            print(f"requests: incremental run after {new} new messages: {inc.requests} "
                  f"requests, {inc.fetched} rows, {t3 - t2:.1f} s "
                  f"(ratio {full.requests / inc.requests:.0f}x fewer)")
    finally:
        server.shutdown()


# ---- scale: whole runs as child processes -------------------------------------------------------

REPO = pathlib.Path(__file__).resolve().parent.parent
OLD_REV = "0c742e7"  # the last reporter without the state store: full reload every run
YEAR = 365 * 86400.0


def serve(n: int, now: float) -> None:
    """The emulator over n synthetic messages (2014-01-02 .. now - 1 h), in this process; reads
    "add K" (K messages more, in the last half hour) and "reset" (back to the n) on stdin and
    answers "ok"."""
    from standins import synthetic_history
    from standins.datagrepper_emulator import EmulatorServer

    start = 1388620800.0  # 2014-01-02
    base = list(synthetic_history.rows(n, start, now - 3600 - start))
    history = RawHistory(base)
    with EmulatorServer(history, keep_alive=True) as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            word, *k = line.split()
            new = list(synthetic_history.rows(int(k[0]), now - 1800, 1200, seed=99)) if k else []
            with server._lock:  # no answer is being made from the rows meanwhile
                history.__init__(base + new if word == "add" else base)
            print("ok", flush=True)


def _run_child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall seconds, peak RSS MiB, CPU seconds, last output line) of one reporter run (wait4
    gives the peak RSS and CPU time of exactly this child)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True,
                                cwd=env["PYTHONPATH"])
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-2000:]}")
        lines = out.read().strip().splitlines()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, usage.ru_maxrss / 1024, cpu, lines[-1] if lines else ""


def _old_tree(rev: str, into: pathlib.Path) -> pathlib.Path:
    """The reporter (and what it imports) as it was at ``rev``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "reporter", "shared"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def bench_scale(n: int, new: int, old_rev: str | None) -> None:
    now = time.time()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(n), "--now", str(now)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    url = server.stdout.readline().strip()
    env = {k: v for k, v in os.environ.items() if k != "FEDIMG_CONFIG"}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ways = [("new (state store)", REPO)]
            if old_rev:
                old = (pathlib.Path(old_rev) if pathlib.Path(old_rev).is_dir()
                       else _old_tree(old_rev, pathlib.Path(tmp)))
                ways.append((f"old ({old_rev}, full reload)", old))
            results = []
            for label, code in ways:
                out = pathlib.Path(tmp) / f"site-{len(results)}"
                cmd = [sys.executable, "-m", "reporter.cli", "--output", str(out),
                       "--datagrepper", url]
                child_env = {**env, "PYTHONPATH": str(code)}
                full = _run_child(cmd, child_env)
                size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
                server.stdin.write(f"add {new}\n")
                server.stdin.flush()
                server.stdout.readline()
                inc = _run_child(cmd, child_env)
                results.append((label, full, inc, size))
                # the next way starts from the same history again
                server.stdin.write("reset\n")
                server.stdin.flush()
                server.stdout.readline()
            print(f"scale: {n} messages, then {new} new (fedimg-report as a child process: "
                  f"wall time, its CPU time and peak RSS; load average before: "
                  f"{' '.join(f'{x:.1f}' for x in os.getloadavg())})")
            for label, full, inc, size in results:
                print(f"  {label}: full {full[0]:.1f} s ({full[2]:.1f} s CPU), {full[1]:.0f} MiB "
                      f"peak, {size / 1e6:.0f} MB written | incremental {inc[0]:.1f} s "
                      f"({inc[2]:.1f} s CPU), {inc[1]:.0f} MiB peak")
                print(f"    full: {full[3]}")
                print(f"    incremental: {inc[3]}")
            print("  targets: full <= 120 s and <= 1024 MiB; incremental <= 5 s and <= 300 MiB")
    finally:
        server.stdin.close()
        server.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fold-messages", type=int, default=100_000)
    ap.add_argument("--history", type=int, default=20_000)
    ap.add_argument("--new", type=int, default=10)
    ap.add_argument("--scale", type=int, default=0, help="messages of the scale runs (0: none)")
    ap.add_argument("--scale-new", type=int, default=100)
    ap.add_argument("--old-rev", default=OLD_REV, help="the reporter to compare with: a git "
                    "revision of this repository, or a directory holding its reporter/ and "
                    "shared/ ('' = none)")
    ap.add_argument("--scale-only", action="store_true", help="skip the fold and requests parts")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the emulator's own process
    ap.add_argument("--now", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.now)
        return
    if not args.scale_only:
        bench_fold(args.fold_messages)
        bench_requests(args.history, args.new)
    if args.scale:
        bench_scale(args.scale, args.scale_new, args.old_rev or None)


if __name__ == "__main__":
    main()
