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

Whole-command mode (one streaming pass vs the sequential ways), on the same images in one run:

    .venv/bin/python bench/aws_bench.py --commands 1:161,4:644 [--workers 16]
    .venv/bin/python bench/aws_bench.py --decoders 1:161 [--preset 6]  # decoding alone

For each SIZE_GIB:DATA_MIB it makes the raw image as above, compresses it with `xz -T0 -1`
(cached under /var/tmp/fedimg-aws-bench-cache: random data barely compresses, so the level
hardly changes decoding), serves it as a Koji build from the Koji hub stand-in over HTTP (with
its sha256 recorded, as Koji does), and runs three ways, each in its own child process against
a freshly reset moto server:

- ours: `fedimg-upload --koji-build ID --no-messages` (targets = ["aws"], one region): the
  download is hashed, decompressed and sent as EBS blocks in one pass;
- old: the same command with the stand-in ignoring HTTP ranges, which makes intake take the
  sequential path: download, verify, `xz -d -T0` into a sparse raw file, then our block upload;
- upload_file: the same verified fetch (uploader.intake.fetch.download) and the same
  `xz -d -T0` (to_sparse_raw), then boto3 S3 `upload_file` of the raw file (the first step of
  the import_snapshot way).

Reported per way: whole-command seconds, the snapshot window (StartSnapshot to CompleteSnapshot
answered; for upload_file the upload itself), bytes sent to AWS (Content-Length of every
request), peak RSS (VmHWM of the child; its xz children apart, by GNU time) and peak scratch
disk (allocated bytes under its work directory, sampled every 20 ms by the parent), and the
CPU seconds of the command with its xz children, of the moto server and of the Koji stand-in
(this process) while it ran. Ratios are upload_file / ours and old / ours.

BENCH_WRAP="COMMAND ..." runs each way's child under that command, WAY in it replaced by the
way's name (a profiler, e.g. `py-spy record -r 200 -f raw -o /tmp/prof-WAY.txt --`).
"""

from __future__ import annotations

import argparse
import contextlib
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


COMMAND_CHILD = r"""
import json, pathlib, sys, threading, time
import boto3

config_path, mode, build_id, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
counted = {"bytes": 0, "requests": 0}
marks = {}
lock = threading.Lock()

def count(request, **_):
    n = int(request.headers.get("Content-Length") or 0)
    with lock:
        counted["bytes"] += n
        counted["requests"] += 1

def mark(name):
    def hook(**_):
        marks.setdefault(name, time.monotonic())
    return hook

_Session = boto3.Session

class CountingSession(_Session):  # every session the command makes is counted
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.events.register("before-send", count)
        self.events.register("before-call.ebs.StartSnapshot", mark("start"))
        self.events.register("after-call.ebs.CompleteSnapshot", mark("complete"))

boto3.Session = CountingSession

# ru_maxrss of children is inherited across fork+exec (a child reports its parent's peak), so
# each xz the command runs is measured by GNU time instead
import subprocess, tempfile
_run = subprocess.run
tool_peaks = [0]

def timed_run(args, **kwargs):
    if args[0] not in ("xz", "prlimit"):
        return _run(args, **kwargs)
    with tempfile.NamedTemporaryFile("r") as t:
        proc = _run(["/usr/bin/time", "-f", "%M", "-o", t.name, *args], **kwargs)
        tool_peaks.append(int(t.read().strip().splitlines()[-1]))
    return proc

subprocess.run = timed_run
_Popen = subprocess.Popen
popen_peaks = []

class TimedPopen(_Popen):  # the streaming xz: GNU time writes its peak when it ends
    def __init__(self, args, *a, **k):
        if isinstance(args, list) and args and args[0] == "xz":
            popen_peaks.append(tempfile.NamedTemporaryFile("r"))
            args = ["/usr/bin/time", "-f", "%M", "-o", popen_peaks[-1].name, *args]
        super().__init__(args, *a, **k)

subprocess.Popen = TimedPopen
t0 = time.monotonic()
if mode == "upload_file":
    import dataclasses
    from boto3.s3.transfer import TransferConfig
    import botocore.config
    from shared.config import load_config
    from uploader.intake import build_images
    from uploader.intake.fetch import MIB, download, to_sparse_raw
    from uploader.pipeline import make_clients

    cfg = load_config(config_path)
    clients = make_clients(cfg, ["aws"])
    (source,) = build_images(int(build_id), config=cfg, session=clients.koji)
    work = pathlib.Path(cfg.uploader.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    got = download(clients.http, source.url, work / source.filename, config=cfg,
                   size=source.size, sha256=source.sha256)
    raw = work / "image.raw"
    to_sparse_raw(got.path, raw, "raw-xz", clients=clients, timeout=3600,
                  max_bytes=cfg.uploader.max_disk_mib * MIB)
    got.path.unlink()
    # moto assembles a multipart upload in one request: minutes for 4 GiB on a busy machine
    s3 = clients.aws.client("s3", config=botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=workers + 2,
        read_timeout=1800))
    s3.create_bucket(Bucket="fedimg-bench")
    marks["start"] = time.monotonic()
    s3.upload_file(str(raw), "fedimg-bench", "image.raw",
                   Config=TransferConfig(max_concurrency=workers))
    marks["complete"] = time.monotonic()
    rc = 0
else:
    from uploader.cli import main
    rc = main(["--config", config_path, "--koji-build", build_id, "--no-messages"])
whole = time.monotonic() - t0
tool_peaks += [int(t.read().strip().splitlines()[-1]) for t in popen_peaks]
status = pathlib.Path("/proc/self/status").read_text().splitlines()
hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"rc": rc, "whole": whole, "window": marks["complete"] - marks["start"],
                  **counted, "rss_mib": hwm / 1024,
                  "tool_rss_mib": max(tool_peaks) / 1024}))
"""


def cached_xz(size_gib: float, data_mib: int, preset: int = 1) -> pathlib.Path:
    """The bench image compressed by `xz -T0 -PRESET`, made once per size/data/preset
    (compressing takes minutes). -1 cuts 3 MiB blocks, -6 (Kiwi's level) 24 MiB blocks."""
    cache = pathlib.Path("/var/tmp/fedimg-aws-bench-cache")
    cache.mkdir(exist_ok=True)
    level = "" if preset == 1 else f"-p{preset}"
    xz = cache / f"bench-{size_gib:g}g-{data_mib}m{level}.raw.xz"
    if not xz.exists():
        raw = cache / "making.raw"
        make_image(raw, int(size_gib * 2**30), data_mib * MIB)
        with open(cache / "making.raw.xz", "wb") as out:
            subprocess.run(["xz", "-T0", f"-{preset}", "-c", str(raw)], stdout=out, check=True)
        raw.unlink()
        (cache / "making.raw.xz").rename(xz)
    return xz


class ScratchPeak:
    """Peak allocated bytes under a directory, sampled from a thread."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            total = 0
            for root, _, files in os.walk(self.path):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):  # removed meanwhile
                        total += os.lstat(os.path.join(root, name)).st_blocks * 512
            self.peak = max(self.peak, total)

    def __enter__(self) -> ScratchPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (/proc/PID/stat)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command_way(way: str, hub, build_id: int, work: pathlib.Path, workers: int, env: dict,
                endpoint: str, moto_pid: int | None) -> dict:
    import tomli_w

    requests_reset(endpoint)
    # moto builds a region's EC2 backend (thousands of sample AMIs) on its first call after a
    # reset, seconds on a busy machine: paid here, so no way is charged for it
    import boto3

    boto3.client("ec2", region_name="us-east-1").describe_images(Owners=["self"])
    run_dir = work / way
    run_dir.mkdir()
    config = run_dir / "fedimg.toml"
    config.write_text(tomli_w.dumps({
        "koji": {"hub": hub.url, "topurl": hub.topurl, "owners": ["releng"]},
        "uploader": {"targets": ["aws"], "work_dir": str(run_dir / "work")},
        "compose": {"base_url": hub.topurl + "/compose"},
        "aws": {"base_region": "us-east-1", "regions": ["us-east-1"], "public": True,
                "upload_workers": workers, "progress_interval": 30},
    }))
    hub.ranges = way != "old"  # without ranges intake takes the sequential path
    (run_dir / "work").mkdir()
    import resource

    kids_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    moto_before = process_cpu(moto_pid) if moto_pid else 0.0
    with ScratchPeak(run_dir / "work") as scratch:
        proc = subprocess.run(
            [*os.environ.get("BENCH_WRAP", "").replace("WAY", way).split(),
             sys.executable, "-c", COMMAND_CHILD, str(config),
             "upload_file" if way == "upload_file" else "command", str(build_id), str(workers)],
            env=env, capture_output=True, text=True, timeout=3600)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    # the command with its xz children; moto; this process (the Koji stand-in's threads, and
    # the scratch sampler)
    cpu = {"command": kids.ru_utime + kids.ru_stime - kids_before.ru_utime - kids_before.ru_stime,
           "moto": process_cpu(moto_pid) - moto_before if moto_pid else float("nan"),
           "hub": own.ru_utime + own.ru_stime - own_before.ru_utime - own_before.ru_stime}
    hub.ranges = True
    if proc.returncode:
        raise SystemExit(f"{way} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["rc"]:
        raise SystemExit(f"{way}: the command exited {result['rc']}:\n{proc.stderr[-3000:]}")
    if os.environ.get("BENCH_LOG"):
        print(proc.stderr[-6000:])
    result["scratch_mib"] = scratch.peak / MIB
    result["cpu"] = cpu
    return result


def commands(spec: str, workers: int, endpoint: str, env: dict, work: pathlib.Path,
             moto_pid: int | None) -> None:
    from standins.koji_hub import KojiHub

    hub = KojiHub(workdir=work / "hub")
    hub.start()
    try:
        for n, item in enumerate(spec.split(",")):
            size_gib, data_mib = float(item.split(":")[0]), int(item.split(":")[1])
            xz = cached_xz(size_gib, data_mib)
            release = f"20261201.n.{n}"
            build_id = hub.add_image_build(
                name="Fedora-Cloud-Base-AmazonEC2", release=release,
                files={"x86_64": {f"Fedora-Cloud-Base-AmazonEC2-Rawhide-{release}.x86_64.raw.xz":
                                  xz}})
            image_work = work / f"image-{n}"
            image_work.mkdir()
            results = {way: command_way(way, hub, build_id, image_work, workers, env, endpoint,
                                        moto_pid)
                       for way in ("ours", "old", "upload_file")}
            report_commands(size_gib, data_mib, xz.stat().st_size, results, workers)
    finally:
        hub.close()


def report_commands(size_gib: float, data_mib: int, compressed: int, r: dict,
                    workers: int) -> None:
    load = pathlib.Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nimage: {size_gib:g} GiB raw, {data_mib} MiB data, {compressed / MIB:.0f} MiB xz; "
          f"{workers} workers; load average {' '.join(load)} (2 shared cores)")
    print(f"{'way':<44}{'whole s':>9}{'window s':>10}{'MiB sent':>10}{'RSS MiB':>9}"
          f"{'xz RSS':>8}{'scratch MiB':>13}  CPU s: command+xz, moto, Koji stand-in")
    labels = {"ours": "ours (one streaming pass)",
              "old": "fetch + xz -d + our block upload (old)",
              "upload_file": "fetch + xz -d + boto3 upload_file"}
    for way, label in labels.items():
        x = r[way]
        print(f"{label:<44}{x['whole']:>9.1f}{x['window']:>10.1f}{x['bytes'] / MIB:>10.0f}"
              f"{x['rss_mib']:>9.0f}{x['tool_rss_mib']:>8.0f}{x['scratch_mib']:>13.0f}"
              f"  {x['cpu']['command']:.1f}, {x['cpu']['moto']:.1f}, {x['cpu']['hub']:.1f}")
    ours = r["ours"]
    for way in ("upload_file", "old"):
        print(f"{labels[way]} / ours: whole {r[way]['whole'] / ours['whole']:.2f}x, "
              f"snapshot window {r[way]['window'] / ours['window']:.2f}x")


def decoders(size_gib: float, data_mib: int, preset: int) -> None:
    """The ways to decompress in the streaming pass, alone on the cached image: Python's
    lzma module (output asked for block by block) and an `xz -d` child behind two pipes (a
    thread feeding its stdin, 512 KiB read into a reused buffer); each cut into blocks and
    zero-checked as intake does. Then intake's own pass fed from the file, with the whole
    stream going to xz and with the blocks of zeros cut out (uploader/intake/xzblocks.py).
    Wall and CPU time of this process and of its children."""
    import fcntl
    import lzma

    xz = cached_xz(size_gib, data_mib, preset)
    block = 512 * 1024
    zero = bytes(block)

    def chunks():
        with open(xz, "rb") as f:
            while chunk := f.read(MIB):
                yield chunk

    def with_lzma() -> int:
        dec, pending, nonzero = lzma.LZMADecompressor(), bytearray(), 0
        for chunk in chunks():
            while not dec.eof:
                pending += dec.decompress(chunk, max_length=block - len(pending))
                chunk = b""
                if len(pending) == block:
                    nonzero += pending != zero
                    pending.clear()
                elif dec.needs_input:
                    break
        return nonzero + (bool(pending) and any(pending))

    def with_pipe(threads: str) -> int:
        proc = subprocess.Popen(["xz", "-d", "-c", f"-T{threads}"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, bufsize=0)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), 1031, MIB)  # F_SETPIPE_SZ

        def feed():
            for chunk in chunks():
                proc.stdin.write(chunk)
            proc.stdin.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        buf = bytearray(block)
        view, nonzero = memoryview(buf), 0
        while True:
            got = 0
            while got < block and (n := os.readv(proc.stdout.fileno(), [view[got:]])):
                got += n
            if got == 0:
                break
            view[got:] = bytes(block - got)
            nonzero += buf != zero
        feeder.join()
        proc.wait()
        return nonzero

    def with_intake(cut: bool) -> int:
        """intake's own pass (its xz pipe, block cutter and zero skipping), minus the network
        and the hashing: the module's inner parts, driven as stream_xz drives them."""
        from uploader.intake import stream, xzblocks

        class Counting:
            blocks = 0

            def block(self, index: int, data: bytes) -> None:
                self.blocks += 1

            def zero(self) -> None:
                pass

        data = xz.read_bytes()
        layout = xzblocks.parse_layout(data[:4096], data[-256 * 1024:], len(data))
        del data
        sink = Counting()
        out = stream._Blocks({"count": sink}, None, layout.disk_size)
        pipe = stream._XzPipe(out, cut=cut)
        cutter = xzblocks.Cutter(layout, pipe.feed, pipe.segment) if cut else None
        for chunk in chunks():
            (cutter.feed if cutter else pipe.feed)(chunk)
        if cutter:
            pipe.feed(cutter.finish())
        refused = pipe.close(3600)
        pipe.kill()
        out.end()
        if refused:
            raise SystemExit(refused)
        return sink.blocks

    print(f"\ndecoding {xz.name} ({xz.stat().st_size / MIB:.0f} MiB) into 512 KiB blocks")
    for label, way in (("lzma module", with_lzma), ("xz -d -T0 pipe", lambda: with_pipe("0")),
                       ("xz -d -T1 pipe", lambda: with_pipe("1")),
                       ("intake, whole", lambda: with_intake(False)),
                       ("intake, cut", lambda: with_intake(True))):
        before, start = os.times(), time.monotonic()
        nonzero = way()
        after, wall = os.times(), time.monotonic() - start
        own = after.user + after.system - before.user - before.system
        kids = (after.children_user + after.children_system
                - before.children_user - before.children_system)
        load = pathlib.Path("/proc/loadavg").read_text().split()[0]
        print(f"{label:<16} wall {wall:5.2f} s  cpu: this process {own:4.2f} s, xz {kids:4.2f} s"
              f"  ({nonzero} non-zero blocks, load {load})")


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
    p.add_argument("--commands", metavar="GIB:MIB,...",
                   help="whole-command mode: images as size GiB:data MiB (see above)")
    p.add_argument("--decoders", metavar="GIB:MIB",
                   help="only compare lzma and xz in a pipe on that image (see decoders())")
    p.add_argument("--preset", type=int, default=1,
                   help="xz level of the --decoders image (6: Kiwi's, 24 MiB blocks)")
    args = p.parse_args()
    if args.decoders:
        decoders(float(args.decoders.split(":")[0]), int(args.decoders.split(":")[1]),
                 args.preset)
        return

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
            if args.commands:
                commands(args.commands, args.workers, endpoint, env, work,
                         proc.pid if proc else None)
                return
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
