"""The staging page blob: the VHD decompressed as a stream, only its non-zero pages sent.

Fedora's Azure image is a fixed VHD (the disk, then a 512-byte footer) compressed with xz. Its
uncompressed size comes from the xz index (`xz --robot --list`), so the page blob is created at
its final size before the first byte is decompressed; Azure needs that size to be whole MiB of
disk plus the footer. The stream is read in 4 MiB pieces (lzma, never written to local disk);
each piece is cut into runs of non-zero 512-byte pages and only those runs are written: a page
blob reads as zeros where nothing was written, so the holes of a sparse disk cost nothing. Every
write is at most MAX_WRITE (4 MiB, the service's limit for one Put Page), enforced here because
the local emulator accepts more. Writes run on `azure.upload_workers` threads with a bounded
window, so memory stays flat.

The blob carries metadata fedimg_sha256 (of the .vhdfixed.xz) and fedimg_upload ("started",
then "complete" once every page and the footer are in): a complete blob of the same sha256 is
reused, anything else under the name (a cut-off upload) is deleted and written again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import lzma
import subprocess
from pathlib import Path
from typing import Any

from shared.errors import BadInput, CloudError
from uploader.model import Runner

log = logging.getLogger(__name__)

PAGE = 512
MAX_WRITE = 4 << 20
MiB = 1 << 20
META_SHA256 = "fedimg_sha256"
META_UPLOAD = "fedimg_upload"
ZERO_PAGE = bytes(PAGE)
ZERO_WRITE = bytes(MAX_WRITE)


def uncompressed_size(path: Path, run: Runner, timeout: int = 120) -> int:
    """The size the .xz decompresses to, from its index (no decompression)."""
    proc = run(["xz", "--robot", "--list", "--", str(path)], stdout=subprocess.PIPE,
               stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise BadInput(f"{path.name}: not an xz file ({proc.stderr.decode(errors='replace')})")
    for line in proc.stdout.decode().splitlines():
        fields = line.split("\t")
        if fields[0] == "totals":
            return int(fields[4])
    raise BadInput(f"{path.name}: xz --list gave no totals")


def check_size(name: str, size: int) -> None:
    if size < PAGE + MiB or (size - PAGE) % MiB:
        raise BadInput(f"{name}: {size} bytes is not a fixed VHD of whole MiB (Azure needs the "
                       "disk size to be a multiple of 1 MiB, plus the 512-byte footer)")


def check_footer(name: str, footer: bytes, size: int) -> None:
    """The last 512 bytes must be a fixed-VHD footer whose size is the disk before it."""
    if footer[:8] != b"conectix":
        raise BadInput(f"{name}: no VHD footer (cookie {footer[:8]!r})")
    if int.from_bytes(footer[60:64], "big") != 2:
        kind = int.from_bytes(footer[60:64], "big")
        raise BadInput(f"{name}: not a fixed VHD (disk type {kind})")
    if int.from_bytes(footer[48:56], "big") != size - PAGE:
        raise BadInput(f"{name}: the VHD footer's size is not the {size - PAGE} bytes of disk")


def nonzero_runs(data: bytes, base: int) -> list[tuple[int, bytes]]:
    """(offset, bytes) of each run of non-zero 512-byte pages in `data` (len % 512 == 0)."""
    if data == ZERO_WRITE[:len(data)]:
        return []
    view = memoryview(data)
    runs: list[tuple[int, bytes]] = []
    start = None
    for i in range(0, len(data), PAGE):
        zero = view[i:i + PAGE] == ZERO_PAGE
        if not zero and start is None:
            start = i
        elif zero and start is not None:
            runs.append((base + start, bytes(view[start:i])))
            start = None
    if start is not None:
        runs.append((base + start, bytes(view[start:])))
    return runs


def write_page(blob: Any, offset: int, data: bytes) -> None:
    if len(data) > MAX_WRITE or len(data) % PAGE or offset % PAGE:
        raise CloudError(f"refusing a page write of {len(data)} bytes at {offset}: at most "
                         f"{MAX_WRITE}, 512-aligned")
    blob.upload_page(data, offset=offset, length=len(data))


def find_complete(blob: Any, sha256: str, size: int) -> bool:
    """True if the blob holds a complete upload of these bytes; anything else there is deleted."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return False
    meta = props.metadata or {}
    if (meta.get(META_UPLOAD) == "complete" and meta.get(META_SHA256) == sha256
            and props.size == size and props.blob_type == "PageBlob"):
        return True
    log.info("%s: deleting an incomplete or different staging blob", blob.blob_name)
    blob.delete_blob()
    return False


def upload(blob: Any, path: Path, sha256: str, *, workers: int, run: Runner) -> int:
    """The VHD inside `path` as a complete page blob (found or written); returns its size."""
    size = uncompressed_size(path, run)
    check_size(path.name, size)
    if find_complete(blob, sha256, size):
        log.info("%s: found complete staging blob", blob.blob_name)
        return size
    blob.create_page_blob(size, metadata={META_SHA256: sha256, META_UPLOAD: "started"})
    sent = pages = 0
    offset = 0
    last = b""
    with (lzma.open(path) as stream,
          concurrent.futures.ThreadPoolExecutor(max(1, workers),
                                                thread_name_prefix="page") as pool):
        pending: set[concurrent.futures.Future] = set()
        while block := stream.read(MAX_WRITE):
            if offset + len(block) > size:
                raise BadInput(f"{path.name}: decompresses to more than its index's {size} bytes")
            if len(block) % PAGE:  # only the end of the stream can be short
                raise BadInput(f"{path.name}: decompressed size is not a multiple of 512")
            for at, data in nonzero_runs(block, offset):
                pending.add(pool.submit(write_page, blob, at, data))
                sent += len(data)
                pages += 1
                if len(pending) >= 2 * max(1, workers):  # bounded window: memory stays flat
                    done, pending = concurrent.futures.wait(
                        pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for fut in done:
                        fut.result()
            offset += len(block)
            last = block
        for fut in concurrent.futures.as_completed(pending):
            fut.result()
    if offset != size:
        raise BadInput(f"{path.name}: decompressed to {offset} bytes, its index says {size}")
    check_footer(path.name, last[-PAGE:], size)
    blob.set_blob_metadata({META_SHA256: sha256, META_UPLOAD: "complete"})
    log.info("%s: %d bytes, %d MiB of data in %d page writes", blob.blob_name, size,
             sent // MiB, pages)
    return size
