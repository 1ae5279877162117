"""Reporter benchmark: fold speed, and datagrepper requests of a full vs an incremental run.

    .venv/bin/python bench/report_bench.py [--fold-messages 100000] [--history 20000] [--new 10]

1. fold: 100k synthetic rows of all three families (AWS regions, downloads, failures, QE,
   promotions, fedora_image_uploader, legacy fedimg), timed end to end (read + fold + records).
   Target: <= 2 s.
2. requests: a synthetic history of 20k rows served over real HTTP on loopback with datagrepper
   1.1.0's paging semantics (standins.datagrepper_emulator); a full run with the default
   [reporter] settings, then 10 new messages and an incremental run; both counted.
"""

from __future__ import annotations

import argparse
import http.server
import json
import pathlib
import random
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fold-messages", type=int, default=100_000)
    ap.add_argument("--history", type=int, default=20_000)
    ap.add_argument("--new", type=int, default=10)
    args = ap.parse_args()
    bench_fold(args.fold_messages)
    bench_requests(args.history, args.new)


if __name__ == "__main__":
    main()
