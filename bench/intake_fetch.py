"""Benchmark: peak memory and time of the verified fetch, for a small and a 4x bigger image.

    .venv/bin/python bench/intake_fetch.py [--sizes 512,2048] [--data 64,256]

For each size (MiB, apparent) a real GPT + ext4 disk image with `data` MiB of content is made,
compressed with xz -T0 (like Koji), served by the Koji hub stand-in, and fetched by
`uploader.intake.fetched` in a fresh child process. Reported per image: download size, wall
time, peak RSS of the Python process (VmHWM) and of xz (GNU time -f %M),
apparent vs allocated size of the sparse raw file. The claim checked: the Python peak does not
grow with the image (ratio printed side by side).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

from standins.disk_images import make_disk_image, make_xz_image
from standins.koji_hub import KojiHub

CHILD = r"""
import dataclasses, json, os, subprocess, sys, tempfile, time
from shared.config import parse_config
from uploader.intake import build_images, fetched
from uploader.pipeline import make_clients

# ru_maxrss is inherited across fork+exec on Linux (a child reports its parent's peak), so the
# Python peak is read from VmHWM (per address space) and xz's from GNU time -f %M.
def vm_hwm_kib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))

tool_peaks = []
def timed_run(args, **kwargs):
    with tempfile.NamedTemporaryFile("r") as t:
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name, *args], **kwargs)
        tool_peaks.append(int(t.read().strip().splitlines()[-1]))
    return proc

cfg = parse_config(json.loads(sys.argv[1]))
clients = dataclasses.replace(make_clients(cfg, []), run=timed_run)
(source,) = build_images(int(sys.argv[2]), config=cfg, session=clients.koji)
t0 = time.monotonic()
with fetched(source, config=cfg, clients=clients) as image:
    st = os.stat(image.raw_path)
    out = {"seconds": round(time.monotonic() - t0, 2), "apparent": st.st_size,
           "allocated": st.st_blocks * 512}
out["py_peak_kib"] = vm_hwm_kib()
out["xz_peak_kib"] = max(tool_peaks)
print(json.dumps(out))
"""

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="512,2048", help="disk sizes in MiB")
    parser.add_argument("--data", default="64,256", help="MiB of file content per disk")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    datas = [float(d) for d in args.data.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fedimg-bench-", dir="/var/tmp") as tmp:
        tmpdir = pathlib.Path(tmp)
        hub = KojiHub(workdir=tmpdir / "hub")
        try:
            for size, data in zip(sizes, datas, strict=True):
                name = f"Fedora-Cloud-Base-Rawhide-20261125.n.{size}.x86_64"
                raw = make_disk_image(tmpdir / f"{name}.raw", size=size << 20, data_mib=data)
                xz = make_xz_image(raw, tmpdir / f"{name}.raw.xz", threads=0)
                raw.path.unlink()
                bid = hub.add_image_build(release=f"20261125.n.{size}",
                                          files={"x86_64": {xz.path.name: xz.path}})
                cfg = {"koji": {"hub": hub.url, "topurl": hub.topurl},
                       "uploader": {"work_dir": str(tmpdir / "work"), "targets": []}}
                proc = subprocess.run(
                    [sys.executable, "-c", CHILD, json.dumps(cfg), str(bid)],
                    capture_output=True, text=True, check=True)
                row = json.loads(proc.stdout)
                row.update(disk_mib=size, data_mib=data, xz_bytes=xz.size)
                rows.append(row)
                xz.path.unlink()
        finally:
            hub.close()
    print(f"{'disk MiB':>9} {'data MiB':>9} {'xz MiB':>8} {'seconds':>8} {'py peak MiB':>12} "
          f"{'xz peak MiB':>12} {'allocated MiB':>14}")
    for r in rows:
        print(f"{r['disk_mib']:>9} {r['data_mib']:>9.0f} {r['xz_bytes'] / 2**20:>8.1f} "
              f"{r['seconds']:>8.2f} {r['py_peak_kib'] / 1024:>12.1f} "
              f"{r['xz_peak_kib'] / 1024:>12.1f} {r['allocated'] / 2**20:>14.1f}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(f"image ratio {b['xz_bytes'] / a['xz_bytes']:.1f}x, python peak ratio "
              f"{b['py_peak_kib'] / a['py_peak_kib']:.2f}x, xz peak ratio "
              f"{b['xz_peak_kib'] / a['xz_peak_kib']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
