#!/usr/bin/env python3
"""Benchmark: producing both download artifacts the fedimg way versus the naive sequential way.

    python bench/downloads_bench.py [--workdir DIR] [--size-gib 2] [--data-mib 512] [--keep]

Builds a sparse raw image (default 2 GiB) holding an ext4 filesystem with about --data-mib of
real files copied from /usr/lib and /usr/share (binaries, libraries, text: realistic compression
ratios), then, side by side in one run:

- baseline: `qemu-img convert -c -O qcow2` then `tar -cSJf` (xz single-threaded), one after the
  other;
- fedimg: `publish_downloads` into a directory destination (qemu-img -m 16 -W and tar | xz -T0 at
  the same time, plus sha256, fsync, rename and CHECKSUM).

Prints wall times, output sizes and the ratios against the targets (<= 0.6x the wall time,
<= 1.05x the sizes), with the machine's load before and after. Needs ~4 GiB free in --workdir.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from shared.config import parse_config
from shared.images import identify
from uploader.model import Clients, ImageSource, VerifiedImage
from uploader.targets.downloads import publish_downloads

MiB = 1 << 20
NAME = "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64"
SOURCES = ("/usr/lib", "/usr/share")


def load() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def copy_tree_sample(target: pathlib.Path, budget: int) -> int:
    """Copy regular files from SOURCES into target until `budget` bytes; return bytes copied."""
    copied = 0
    for source in SOURCES:
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for name in sorted(filenames):
                src = pathlib.Path(dirpath, name)
                try:
                    if src.is_symlink() or not src.is_file():
                        continue
                    size = src.stat().st_size
                    if copied + size > budget:
                        continue
                    dst = target / src.relative_to("/")
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dst)
                except OSError:
                    continue
                copied += size
                if copied >= budget * 0.995:
                    return copied
    return copied


def make_image(work: pathlib.Path, size: int, data: int) -> pathlib.Path:
    stage = work / "stage"
    stage.mkdir()
    copied = copy_tree_sample(stage, data)
    raw = work / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "fedimg-bench", "-d", str(stage), str(raw)],
                   check=True)
    shutil.rmtree(stage)
    print(f"image: {raw} apparent {size / MiB:.0f} MiB, files {copied / MiB:.0f} MiB, "
          f"allocated {os.stat(raw).st_blocks * 512 / MiB:.0f} MiB")
    return raw


def cpu_seconds() -> float:
    """CPU time (user + sys) of this process and every child it has waited for (qemu-img, tar,
    xz and tar's own xz): unlike wall time, barely affected by other load on the machine."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def timed(cmd: list[str], **kwargs) -> float:
    start = time.monotonic()
    subprocess.run(cmd, check=True, **kwargs)
    return time.monotonic() - start


def baseline(raw: pathlib.Path, out: pathlib.Path) -> dict:
    out.mkdir()
    qcow2 = out / "disk.qcow2"
    txz = out / "disk.raw.tar.xz"
    env = {k: v for k, v in os.environ.items() if k not in ("XZ_DEFAULTS", "XZ_OPT")}
    env["XZ_OPT"] = "-T1"  # single-threaded, whatever this xz's default is
    start, cpu = time.monotonic(), cpu_seconds()
    t_qcow2 = timed(["qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(qcow2)])
    t_txz = timed(["tar", "-cSJf", str(txz), "-C", str(raw.parent), raw.name], env=env)
    return {"wall": time.monotonic() - start, "cpu": cpu_seconds() - cpu,
            "qcow2_s": t_qcow2, "txz_s": t_txz,
            "qcow2": qcow2.stat().st_size, "txz": txz.stat().st_size}


def fedimg(raw: pathlib.Path, dest: pathlib.Path) -> dict:
    source = ImageSource(identity=identify(NAME), filename=NAME + ".raw.xz",
                         url="https://bench.invalid/", image_type="raw-xz", koji_task_id=1)
    config = parse_config({"downloads": {"destination": str(dest),
                                         "base_url": "https://bench.invalid/pub"}})
    messages = []
    start, cpu = time.monotonic(), cpu_seconds()
    outcome = publish_downloads(VerifiedImage(source, raw), config=config, clients=Clients(),
                                emit=messages.append)
    wall, cpu = time.monotonic() - start, cpu_seconds() - cpu
    if not outcome.ok:
        raise SystemExit(f"fedimg run failed: {[m.body for m in messages]}")
    sizes = {m.body["format"]: m.body["size"] for m in messages}
    return {"wall": wall, "cpu": cpu, "qcow2": sizes["qcow2"], "txz": sizes["raw.tar.xz"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/var/tmp", help="where the image and outputs go")
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--data-mib", type=int, default=512)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="fedimg-downloads-bench-", dir=args.workdir))
    try:
        raw = make_image(work, int(args.size_gib * 1024 * MiB), args.data_mib * MiB)
        print(f"cores: {os.cpu_count()}  load before: {load()}")
        base = baseline(raw, work / "baseline")
        print(f"load after baseline: {load()}")
        ours = fedimg(raw, work / "fedimg")
        print(f"load after: {load()}")
        print()
        print("| variant | wall s | CPU s | qcow2 bytes | raw.tar.xz bytes |")
        print("|---|---:|---:|---:|---:|")
        print(f"| baseline (qemu-img -c, then tar -cSJf, xz -T1) | {base['wall']:.1f} "
              f"(qcow2 {base['qcow2_s']:.1f} + tar.xz {base['txz_s']:.1f}) | {base['cpu']:.1f} | "
              f"{base['qcow2']:,} | {base['txz']:,} |")
        print(f"| fedimg (concurrent, -m 16 -W, xz -T0, + sha256/CHECKSUM) | {ours['wall']:.1f} | "
              f"{ours['cpu']:.1f} | {ours['qcow2']:,} | {ours['txz']:,} |")
        wall, q, t = (ours["wall"] / base["wall"], ours["qcow2"] / base["qcow2"],
                      ours["txz"] / base["txz"])
        print(f"| ratio fedimg / baseline (target <= 0.6 / 1.05 / 1.05) | {wall:.2f}x | "
              f"{ours['cpu'] / base['cpu']:.2f}x | {q:.3f}x | {t:.3f}x |")
        ok = wall <= 0.6 and q <= 1.05 and t <= 1.05
        print(f"\ntargets {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
