"""AWS upload benchmark: EBS direct snapshot upload vs boto3's S3 managed upload, and fan-out.

    .venv/bin/python bench/aws_bench.py [--size-gib 2] [--data-mib 256] \
        [--workers 16] [--regions 8] [--delay 3] [--endpoint URL]

Not a test: run by hand, figures go into docs/benchmarks.md.

1. Makes a sparse raw image (default 2 GiB) holding --data-mib of random data in 8 MiB extents
   at scattered 1 MiB-aligned offsets (like a filesystem's clustered, partition-aligned data).
2. Uploads it to the same moto server (a) with uploader.targets.aws.snapshot.upload (EBS direct API:
   holes and zero blocks skipped) and (b) with boto3's S3 managed upload_file of the same raw
   file (the first step of the import_snapshot path). Each runs in its own child process, so
   its peak RSS (VmHWM of the child) is the upload's alone. Bytes sent = sum of the
   Content-Length of every request, counted by a botocore 'before-send' hook.
3. Fan-out: registers the image once, then publish_aws to --regions regions with a per-copy
   delay injected by a 'before-call.ec2.CopyImage' hook (sleeps in that region's thread):
   wall time should be about one delay, not regions x delay.

Starts its own moto server unless --endpoint is given.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

MIB = 2**20
EXTENT = 8 * MIB


def make_image(path: pathlib.Path, size: int, data: int, seed: int = 7) -> None:
    """`data` bytes of random data in EXTENT-sized pieces, each in its own 2 x EXTENT slot at a
    random 1 MiB-aligned offset (so pieces never overlap and rarely line up with blocks)."""
    rng = random.Random(seed)
    slot = 2 * EXTENT
    chosen = sorted(rng.sample(range(size // slot), data // EXTENT))
    with open(path, "wb") as f:
        f.truncate(size)
        for index in chosen:
            f.seek(index * slot + rng.randrange(0, (slot - EXTENT) // MIB + 1) * MIB)
            f.write(os.urandom(EXTENT))


class ByteCounter:
    """Sum of Content-Length over every request a boto3 session sends."""

    def __init__(self, session):
        self.bytes = 0
        self.requests = 0
        self._lock = threading.Lock()
        session.events.register("before-send", self._count)

    def _count(self, request, **_):
        length = request.headers.get("Content-Length")
        n = int(length) if length is not None else 0
        with self._lock:
            self.bytes += n
            self.requests += 1


def child(mode: str, raw: str, workers: int) -> None:
    """Runs in a child process: one upload, a JSON line with bytes, requests and seconds."""
    import boto3
    import botocore.config

    from shared.config import AwsConfig
    from uploader.aws_clients import ClientFactory
    from uploader.targets.aws import naming
    from uploader.targets.aws.snapshot import upload

    session = boto3.Session(region_name="us-east-1")
    counter = ByteCounter(session)
    start = time.monotonic()
    if mode == "ebs":
        aws = AwsConfig(upload_workers=workers, progress_interval=30)
        upload(ClientFactory(session, aws), "us-east-1", pathlib.Path(raw), "bench",
               [{"Key": naming.TAG_AMI_NAME, "Value": "bench"}], None, [f"{time.time()}"])
    else:
        from boto3.s3.transfer import TransferConfig

        s3 = session.client("s3", config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=workers + 2))
        s3.create_bucket(Bucket="fedimg-bench")
        s3.upload_file(raw, "fedimg-bench", "image.raw",
                       Config=TransferConfig(max_concurrency=workers))
    seconds = time.monotonic() - start
    status = pathlib.Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(line.split()[1]) for line in status
               if line.startswith("VmHWM:"))  # peak resident set of this process, KiB
    print(json.dumps({"bytes": counter.bytes, "requests": counter.requests,
                      "seconds": seconds, "peak_rss_mib": hwm / 1024}))


def run_child(mode: str, raw: pathlib.Path, workers: int, env: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(raw),
                           "--workers", str(workers)], env=env, capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fan_out(raw: pathlib.Path, regions: int, delay: float) -> dict:
    import boto3

    from shared.config import AwsConfig, Config
    from shared.images import identify
    from uploader.model import Clients, ImageSource, VerifiedImage
    from uploader.targets.aws import publish_aws

    names = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
             "eu-central-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
             "ca-central-1", "sa-east-1", "eu-north-1", "ap-south-1", "eu-west-3", "ap-northeast-2"]
    chosen = names[: regions + 1]  # base region + `regions` copies
    ident = identify("Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64")  # no deprecation calls
    src = ImageSource(identity=ident, filename="x.raw.xz", url="https://x", image_type="raw-xz",
                      koji_task_id=1)
    cfg = Config(aws=AwsConfig(regions=chosen, max_parallel_copies=regions, progress_interval=60))
    session = boto3.Session()
    # snapshot + AMI in the base region first, without delay, so the timed run is the copies
    publish_aws(VerifiedImage(src, raw), config=Config(aws=AwsConfig(regions=["us-east-1"])),
                clients=Clients(aws=session), emit=lambda m: None)

    def slow_copy(**_):
        time.sleep(delay)

    session.events.register("before-call.ec2.CopyImage", slow_copy)
    start = time.monotonic()
    outcome = publish_aws(VerifiedImage(src, raw), config=cfg, clients=Clients(aws=session),
                          emit=lambda m: None)
    wall = time.monotonic() - start
    return {"regions": regions, "delay": delay, "wall": wall, "ok": outcome.ok,
            "serial": regions * delay}


def requests_reset(endpoint: str) -> None:
    import requests

    requests.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()


def start_moto(workdir: pathlib.Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(workdir / "moto.log", "wb") as log:  # the child keeps its own copy of the fd
        proc = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "moto_server"),
                                 "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    import requests

    for _ in range(300):
        try:
            requests.get(f"{url}/moto-api/", timeout=2)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        workers = int(sys.argv[sys.argv.index("--workers") + 1])
        child(sys.argv[2], sys.argv[3], workers)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gib", type=float, default=2)
    p.add_argument("--data-mib", type=int, default=256)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--regions", type=int, default=8, help="copies in the fan-out run")
    p.add_argument("--delay", type=float, default=3.0, help="seconds injected per copy")
    p.add_argument("--endpoint", help="an already running moto server")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="fedimg-aws-bench-", dir="/var/tmp") as tmp:
        work = pathlib.Path(tmp)
        proc = None
        endpoint = args.endpoint
        if not endpoint:
            proc, endpoint = start_moto(work)
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
               "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
               "PYTHONPATH": str(REPO)}
        os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
        try:
            raw = work / "bench.raw"
            size = int(args.size_gib * 2**30)
            make_image(raw, size, args.data_mib * MIB)
            allocated = os.stat(raw).st_blocks * 512
            ebs = run_child("ebs", raw, args.workers, env)
            s3 = run_child("s3", raw, args.workers, env)
            requests_reset(endpoint)
            fan = fan_out(raw, args.regions, args.delay)
        finally:
            if proc:
                proc.terminate()
                proc.wait(timeout=30)

    load = pathlib.Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nimage: {size / 2**30:.1f} GiB sparse raw, {allocated / MIB:.0f} MiB allocated, "
          f"{args.workers} workers, load average {' '.join(load)} (2 shared cores)\n")
    print(f"{'path':<28}{'bytes sent':>16}{'MiB':>10}{'requests':>10}{'wall s':>9}"
          f"{'peak RSS MiB':>14}")
    for label, r in (("EBS direct (this uploader)", ebs), ("S3 upload_file", s3)):
        rss = f"{r['peak_rss_mib']:.0f}"
        print(f"{label:<28}{r['bytes']:>16,}{r['bytes'] / MIB:>10.0f}{r['requests']:>10}"
              f"{r['seconds']:>9.1f}{rss:>14}")
    print(f"\nbytes ratio S3/EBS: {s3['bytes'] / ebs['bytes']:.2f}x   "
          f"time ratio S3/EBS: {s3['seconds'] / ebs['seconds']:.2f}x   "
          f"EBS bytes / allocated data: {ebs['bytes'] / allocated:.3f}")
    print(f"fan-out: {fan['regions']} copies with {fan['delay']:.1f} s injected each: "
          f"{fan['wall']:.1f} s wall (serial would be {fan['serial']:.1f} s), ok={fan['ok']}")


if __name__ == "__main__":
    main()
