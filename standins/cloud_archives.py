"""The shapes Fedora ships its cloud-specific images in, made from a real disk image.

- GCE: ``<name>.tar.gz``, a gzip'd GNU tar whose only member is ``disk.raw`` (sparse), the form
  Compute Engine's images.insert reads from Cloud Storage;
- Azure: ``<name>.vhdfixed.xz``, a fixed VHD (the raw disk, its size rounded up to whole MiB as
  Azure requires, then a 512-byte VHD footer) compressed with xz.

Both are made with the real tools (GNU tar + gzip, qemu-img, xz), like Koji's image builds do.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import tempfile

MiB = 1 << 20


def make_gce_archive(raw: os.PathLike | str, out: os.PathLike | str) -> pathlib.Path:
    """``tar --format=gnu -cSzf out disk.raw`` from a copy of ``raw`` named disk.raw."""
    out = pathlib.Path(out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        disk = pathlib.Path(tmp) / "disk.raw"
        subprocess.run(["cp", "--sparse=always", str(raw), str(disk)], check=True)
        subprocess.run(["tar", "--format=gnu", "-cSzf", str(out), "-C", tmp, "disk.raw"],
                       check=True)
    return out


def make_vhdfixed_xz(raw: os.PathLike | str, out: os.PathLike | str) -> pathlib.Path:
    """A fixed VHD of ``raw`` (virtual size rounded up to a whole MiB), xz-compressed."""
    out = pathlib.Path(out)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        disk = pathlib.Path(tmp) / "disk.raw"
        subprocess.run(["cp", "--sparse=always", str(raw), str(disk)], check=True)
        size = disk.stat().st_size
        if size % MiB:
            os.truncate(disk, size + MiB - size % MiB)
        vhd = pathlib.Path(tmp) / "disk.vhd"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                        "subformat=fixed,force_size=on", str(disk), str(vhd)], check=True,
                       capture_output=True)
        with open(out, "wb") as f:
            subprocess.run(["xz", "-z", "-c", "-1", "-T1", "--", str(vhd)], stdout=f,
                           check=True)
    return out

