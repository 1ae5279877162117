"""Range requests on a download: its xz index before the body, and the body in chunks.

The streaming pass (uploader/intake/stream.py) must know the raw size of an .raw.xz before its
first byte, to start a snapshot of that size: it reads the file's first 4 KiB and last 256 KiB
with two range requests and takes the size (and the block layout) from the index there. A
server that answers a range with the whole file does not serve ranges: the caller then takes
the classic path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import requests

from shared.config import Config
from shared.errors import BadInput, VerificationFailed
from shared.http import IncompleteAnswer
from uploader.intake import fetch, xzblocks
from uploader.model import Clients

log = logging.getLogger(__name__)

HEAD_BYTES = 4096
TAIL_BYTES = 256 * 1024


def read_index(http: requests.Session, url: str, work: Path, *, config: Config,
               clients: Clients, size: int | None) -> tuple[int, xzblocks.Layout | None] | None:
    """The raw size an .raw.xz declares in its index, read with two range requests, and where
    its blocks are (None for a file with nothing to skip, see xzblocks.parse_layout); None if
    the server does not serve ranges or the index is not within the last TAIL_BYTES."""
    tail = get_range(http, url, f"-{TAIL_BYTES}", config=config)
    if tail is None:
        return None
    body, first, total = tail
    if size is not None and total != size:
        raise VerificationFailed(f"{url}: server has {total} bytes, the source records {size}")
    head = get_range(http, url, f"0-{HEAD_BYTES - 1}", config=config)
    if head is None:
        return None
    layout = xzblocks.parse_layout(head[0], body, total)
    if layout is not None:
        return layout.disk_size, layout
    probe = work / "index.xz"
    with open(probe, "wb") as f:  # sparse: only the head and the tail take disk space
        f.truncate(total)
        f.write(head[0])
        f.seek(first)
        f.write(body)
    try:
        return fetch.xz_declared_size(probe, clients=clients,
                                      timeout=config.uploader.decompress_timeout), None
    except VerificationFailed as exc:
        log.info("%s: xz index not readable from its last %d bytes (%s): no streaming",
                 url, TAIL_BYTES, exc)
        return None
    finally:
        probe.unlink()


def get_range(http: requests.Session, url: str, spec: str, *,
               config: Config) -> tuple[bytes, int, int] | None:
    """(body, first byte, total size) of `Range: bytes=spec`; None if the server sent the whole
    file instead (it does not serve ranges)."""

    def attempt() -> tuple[bytes, int, int] | None:
        resp = fetch.open_url(http, url, headers={"Range": f"bytes={spec}"})
        try:
            if resp.status_code == 404:
                raise BadInput(f"{url}: HTTP 404")
            if resp.status_code != 206:
                return None
            first, total = content_range(url, resp)
            body = bytearray()
            for chunk in body_chunks(url, resp, first):
                body += chunk
                if len(body) > TAIL_BYTES:  # never more than asked for
                    raise VerificationFailed(f"{url}: range answer larger than asked for")
            announced = resp.headers.get("Content-Length")
            if announced is not None and announced.isdigit() and len(body) != int(announced):
                raise IncompleteAnswer(f"{url}: range cut off after {len(body)} bytes")
            return bytes(body), first, total
        finally:
            resp.close()

    return fetch.until_complete(url, config, attempt)


def content_range(url: str, resp: requests.Response) -> tuple[int, int]:
    """(first byte, total size) from a 206's Content-Range: "bytes first-last/total"."""
    value = resp.headers.get("Content-Range", "")
    unit, _, rest = value.partition(" ")
    span, _, total = rest.partition("/")
    first = span.partition("-")[0]
    if unit != "bytes" or not first.isdigit() or not total.isdigit():
        raise VerificationFailed(f"{url}: unusable Content-Range {value!r}")
    return int(first), int(total)


def body_chunks(url: str, resp: requests.Response, before: int) -> Iterator[bytes]:
    """The body in CHUNK pieces; a cut-off body is IncompleteAnswer (resumed by the caller)."""
    it = resp.iter_content(fetch.CHUNK)
    read = 0
    while True:
        try:
            chunk = next(it)
        except StopIteration:
            return
        except fetch.CUT_OFF as exc:
            raise IncompleteAnswer(
                f"{url}: {exc.__class__.__name__} after {before + read} bytes") from exc
        read += len(chunk)
        yield chunk
