"""Verified fetch: stream an image from a configured location, check it, make a sparse raw disk.

Rules that keep it secure and reliable:
- Only URLs below koji.topurl or compose.base_url are fetched (`allowed_roots`); the sources
  build them, this module checks them again, so a bug upstream cannot widen what we fetch.
- The HTTP session (`uploader.pipeline.make_clients`, policy in `shared.http`) follows redirects
  only within the same scheme://host:port; anything else is refused (VerificationFailed, never
  retried). It retries connection errors, timeouts and HTTP 5xx/429 `fetch_retries` times with
  a short capped backoff; a read timeout is "fetch_timeout seconds without a byte".
- A body cut off while streaming, or shorter than the source records, is fetched again, at most
  `fetch_retries` more times. Whatever is still failing is reported as TransientError (Nack).
- Size and sha256 are checked while streaming (1 MiB chunks, so memory does not grow with the
  image); a mismatch is VerificationFailed and the bytes are discarded.
- Only verified bytes are decompressed: `.raw.xz` with multithreaded `xz -d -T0` whose stdout is
  a regular file, so xz itself seeks over zero runs and the raw file is SPARSE; `.raw` gets its
  holes punched with `fallocate --dig-holes`; `.qcow2` goes through `qemu-img convert -O raw`
  after refusing backing/data files (they would read local paths named by the image); a qcow2
  kept as fetched for a target that reads the file is refused by the same rules.
- A decompression bomb is refused: the raw disk may be at most `uploader.max_disk_mib`, checked
  from the xz index or qcow2 virtual size before writing, and enforced on xz by `prlimit`.
- Everything lives in a private directory under uploader.work_dir, removed on every exit path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import requests

from shared.config import Config
from shared.errors import BadInput, TransientError, VerificationFailed
from shared.http import (
    MAX_REDIRECTS,
    RETRY_STATUS,
    GaveUp,
    IncompleteAnswer,
    RedirectRefused,
    retry_incomplete,
)
from uploader.intake.wanted import safe_filename
from uploader.model import Clients, ImageSource, VerifiedImage

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK = 1 << 20
MIB = 1 << 20
BACKOFF = 0.5  # seconds before the second attempt; doubled for each further one
# what breaks a body mid-stream: the transport retried the request, not the reading of its body
CUT_OFF = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def allowed_roots(config: Config) -> tuple[str, ...]:
    """URL prefixes files may come from: koji.topurl and compose.base_url, with a final '/'."""
    return tuple(
        root.rstrip("/") + "/" for root in (config.koji.topurl, config.compose.base_url)
    )


def check_allowed(url: str, roots: tuple[str, ...]) -> None:
    """Refuse a URL that is not below a configured root (or sneaks '..' past the prefix)."""
    parts = urllib.parse.urlsplit(url)
    if parts.query or parts.fragment or ".." in parts.path.split("/"):
        raise VerificationFailed(f"refusing to fetch {url}: not a plain path")
    if not any(url.startswith(root) for root in roots):
        raise VerificationFailed(
            f"refusing to fetch {url}: not below a configured location ({', '.join(roots)})"
        )


def open_url(http: requests.Session, url: str,
             headers: dict[str, str] | None = None) -> requests.Response:
    """GET url (streaming) through the session's policy; only a 200, a 206 (partial content,
    for a Range in `headers`) or a 404 comes back."""
    try:
        # verify passed explicitly: requests lets $REQUESTS_CA_BUNDLE override a session's
        # CA bundle (koji.serverca) unless the request names it
        resp = http.get(url, stream=True, verify=http.verify, headers=headers)
    except RedirectRefused as exc:
        raise VerificationFailed(str(exc)) from exc
    except requests.TooManyRedirects as exc:
        raise VerificationFailed(f"{url}: more than {MAX_REDIRECTS} redirects") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
    if resp.status_code in (200, 206, 404):
        return resp
    resp.close()
    if resp.status_code in RETRY_STATUS:
        raise TransientError(f"{url}: HTTP {resp.status_code}")
    raise BadInput(f"{url}: HTTP {resp.status_code}")


def until_complete(url: str, config: Config, attempt: Callable[[], T]) -> T:
    try:
        return retry_incomplete(attempt, what=f"fetching {url}", backoff=BACKOFF,
                                attempts=config.uploader.fetch_retries + 1)
    except GaveUp as exc:
        raise TransientError(str(exc)) from exc


def get_small(
    http: requests.Session, url: str, *, config: Config, max_bytes: int = 64 << 20
) -> bytes | None:
    """Fetch a small document (images.json) by the same rules; None if it is not there (404)."""
    check_allowed(url, allowed_roots(config))

    def attempt() -> bytes | None:
        resp = open_url(http, url)
        if resp.status_code == 404:
            resp.close()
            return None
        data = bytearray()
        try:
            for chunk in resp.iter_content(CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    raise BadInput(f"{url}: larger than {max_bytes} bytes")
        except CUT_OFF as exc:
            raise IncompleteAnswer(f"{url}: {exc.__class__.__name__}: {exc}") from exc
        finally:
            resp.close()
        return bytes(data)

    return until_complete(url, config, attempt)


@dataclasses.dataclass(frozen=True)
class Download:
    path: Path
    size: int
    sha256: str


def download(
    http: requests.Session,
    url: str,
    dest: Path,
    *,
    config: Config,
    size: int | None = None,
    sha256: str | None = None,
) -> Download:
    """Stream url into dest, checking size and sha256 on the way; fetched again when cut off."""
    check_allowed(url, allowed_roots(config))
    expected_sha = sha256.lower() if sha256 else None

    def attempt() -> Download:
        resp = open_url(http, url)
        if resp.status_code == 404:
            resp.close()
            raise BadInput(f"{url}: HTTP 404")
        announced = resp.headers.get("Content-Length")
        if size is not None and announced is not None and announced.isdigit() \
                and int(announced) != size:
            resp.close()
            raise VerificationFailed(
                f"{url}: server announces {announced} bytes, the source records {size}"
            )
        digest = hashlib.sha256()
        got = 0
        try:
            with open(dest, "wb") as out:
                for chunk in resp.iter_content(CHUNK):
                    got += len(chunk)
                    if size is not None and got > size:
                        raise VerificationFailed(f"{url}: more than the recorded {size} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except CUT_OFF as exc:
            raise IncompleteAnswer(f"{url}: {exc.__class__.__name__} after {got} bytes") from exc
        finally:
            resp.close()
        if size is not None and got != size:
            raise IncompleteAnswer(f"{url}: got {got} bytes, the source records {size}")
        actual = digest.hexdigest()
        if expected_sha is not None and actual != expected_sha:
            raise VerificationFailed(
                f"{url}: sha256 mismatch: got {actual}, the source records {expected_sha}"
            )
        return Download(dest, got, actual)

    return until_complete(url, config, attempt)


def xz_declared_size(src: Path, *, clients: Clients, timeout: int) -> int:
    """Bytes an .xz file says it decompresses to (the sum of its streams' indexes), read with
    `xz --list` without decompressing anything; VerificationFailed if it is not .xz at all."""
    proc = clients.run(["xz", "--robot", "--list", "--", str(src)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    _check_tool(proc, "xz --list", src)
    for line in proc.stdout.decode(errors="replace").splitlines():
        fields = line.split("\t")
        if fields[0] == "totals" and len(fields) > 4 and fields[4].isdigit():
            return int(fields[4])
    raise VerificationFailed(f"{src.name}: xz --list gave no uncompressed size")


def check_disk_size(src: Path, size: int, max_bytes: int) -> None:
    """Refuse an image whose raw disk would be larger than uploader.max_disk_mib."""
    if size > max_bytes:
        raise VerificationFailed(f"{src.name}: its raw disk would be {size} bytes, more than "
                                 f"uploader.max_disk_mib ({max_bytes // MIB} MiB)")


def to_sparse_raw(src: Path, raw: Path, image_type: str, *, clients: Clients,
                  timeout: int, max_bytes: int, keep_src: bool = False) -> None:
    """Turn a verified download into a sparse raw disk image at `raw`, at most `max_bytes`.

    The size is checked before anything is written (the xz index, the qcow2 virtual size), and
    xz runs under `prlimit --fsize`, so even an xz file whose index lies about its size (a
    decompression bomb) cannot write more than `max_bytes` to the work directory. A plain raw
    download becomes the raw disk itself: moved, or with `keep_src` (a target also reads the
    file as fetched) hard-linked, since punching holes leaves its bytes as they are.
    """
    run = clients.run
    try:
        if image_type == "raw-xz":
            check_disk_size(src, xz_declared_size(src, clients=clients, timeout=timeout),
                            max_bytes)
            with open(raw, "wb") as out:
                # stdout is a regular file, so xz writes holes for zero runs itself (--sparse is
                # its default when decompressing to a file); -T0 decodes blocks in parallel.
                proc = run(["prlimit", f"--fsize={max_bytes}", "--",
                            "xz", "--decompress", "--format=xz", "--stdout", "--threads=0",
                            "--", str(src)],
                           stdout=out, stderr=subprocess.PIPE, timeout=timeout)
            if proc.returncode != 0 and raw.stat().st_size >= max_bytes:
                raise VerificationFailed(
                    f"{src.name}: decompresses past uploader.max_disk_mib ({max_bytes // MIB} "
                    "MiB) although its index says less")
            _check_tool(proc, "xz", src)
        elif image_type == "raw":
            check_disk_size(src, src.stat().st_size, max_bytes)
            (os.link if keep_src else os.replace)(src, raw)
            proc = run(["fallocate", "--dig-holes", str(raw)], stderr=subprocess.PIPE,
                       timeout=timeout)
            _check_tool(proc, "fallocate", src)
        elif image_type == "qcow2":
            _check_qcow2(src, clients=clients, timeout=timeout, max_bytes=max_bytes)
            proc = run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(src), str(raw)],
                       stderr=subprocess.PIPE, timeout=timeout)
            _check_tool(proc, "qemu-img", src)
        else:
            raise BadInput(f"{src.name}: cannot make a raw disk from image type {image_type}")
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"{src.name}: {exc.cmd[0]} took longer than {timeout} s") from exc


def _check_tool(proc: subprocess.CompletedProcess, tool: str, src: Path) -> None:
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() if proc.stderr else ""
        raise VerificationFailed(f"{src.name}: {tool} failed ({proc.returncode}): {err}")


def _check_qcow2(src: Path, *, clients: Clients, timeout: int, max_bytes: int) -> None:
    """Refuse a qcow2 with a backing/data file or a virtual size past `max_bytes`."""
    virtual = _qcow2_info(src, clients=clients, timeout=timeout).get("virtual-size")
    if isinstance(virtual, bool) or not isinstance(virtual, int):
        raise VerificationFailed(f"{src.name}: qemu-img info gives no virtual size")
    check_disk_size(src, virtual, max_bytes)


def _qcow2_info(src: Path, *, clients: Clients, timeout: int) -> dict:
    """`qemu-img info` of a qcow2, refusing backing/data files (they would read local paths
    named by the image)."""
    proc = clients.run(["qemu-img", "info", "--output=json", "-f", "qcow2", str(src)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    _check_tool(proc, "qemu-img info", src)
    info = json.loads(proc.stdout)
    data_file = ((info.get("format-specific") or {}).get("data") or {}).get("data-file")
    if info.get("backing-filename") or data_file:
        raise VerificationFailed(f"{src.name}: qcow2 with a backing or data file is refused")
    return info


@contextlib.contextmanager
def fetched(source: ImageSource, *, config: Config, clients: Clients,
            raw: bool = True, keep_file: bool = False,
            streams: Mapping[str, Callable[..., Any]] | None = None) -> Iterator[VerifiedImage]:
    """Fetch, verify and (if `raw`) decompress one image; yield it; remove every file on exit.

    `keep_file` keeps the verified download for targets that read it as fetched. `streams`
    maps the "stream" targets to their sink openers: an .raw.xz is then fetched, verified and
    decompressed in one pass that feeds their sinks (uploader/intake/stream.py), the raw file
    and the kept file being written in the same pass; any other image (or a server that does
    not serve ranges) makes those targets read the raw file instead. Sinks still open when the
    caller is done are aborted. The yielded VerifiedImage carries a copy of `source` whose
    size/sha256 are the measured values of the fetched (compressed) file, so messages can report
    them even when the source recorded none.
    """
    filename = safe_filename(source.filename)
    if filename is None:
        raise BadInput(f"refusing unsafe file name {source.filename!r}")
    base = Path(config.uploader.work_dir)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="fedimg-", dir=base))
    sinks: dict[str, Any] = {}
    try:
        (work / "src").mkdir()  # the download never shares a name with the raw file
        raw_path = work / f"{source.identity.name}.raw"
        streamed = None
        if streams and source.image_type == "raw-xz":
            streamed = _fetch_streaming(source, filename, work, raw_path, config=config,
                                        clients=clients, streams=streams, raw=raw,
                                        keep_file=keep_file, sinks=sinks)
        if streamed is not None:
            got, wrote_raw = streamed
            if not wrote_raw:
                raw_path = None
        else:
            got = download(clients.http, source.url, work / "src" / filename, config=config,
                           size=source.size, sha256=source.sha256)
            if raw or streams:
                to_sparse_raw(got.path, raw_path, source.image_type, clients=clients,
                              timeout=config.uploader.decompress_timeout,
                              max_bytes=config.uploader.max_disk_mib * MIB, keep_src=keep_file)
            else:
                raw_path = None
                _check_as_fetched(got.path, source.image_type, config=config, clients=clients)
        log.info("fetched %s (%d bytes, sha256 %s%s)%s", source.url, got.size, got.sha256,
                 "" if source.sha256 else ", none recorded by the source",
                 f", streamed to {', '.join(sinks)}" if sinks else "")
        if not keep_file:
            shutil.rmtree(work / "src")  # the compressed copy is no longer needed; free the disk
        verified = dataclasses.replace(source, size=got.size, sha256=got.sha256)
        yield VerifiedImage(source=verified, raw_path=raw_path,
                            file_path=got.path if keep_file else None, streamed=dict(sinks))
    finally:
        for sink in sinks.values():  # a handler that failed before finishing it
            sink.abort("not finished by its target")
        shutil.rmtree(work, ignore_errors=True)


def _check_as_fetched(path: Path, image_type: str | None, *, config: Config,
                      clients: Clients) -> None:
    """The size refusals for a download that targets read as fetched (no raw disk made)."""
    if image_type == "raw-xz":
        check_disk_size(path, xz_declared_size(
            path, clients=clients, timeout=config.uploader.decompress_timeout),
            config.uploader.max_disk_mib * MIB)
    elif image_type == "qcow2":  # read as fetched (Glance): the same refusals
        try:
            _check_qcow2(path, clients=clients, timeout=config.uploader.decompress_timeout,
                         max_bytes=config.uploader.max_disk_mib * MIB)
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"{path.name}: qemu-img info took too long") from exc


def _fetch_streaming(source: ImageSource, filename: str, work: Path, raw_path: Path, *,
                     config: Config, clients: Clients, streams: Mapping[str, Callable[..., Any]],
                     raw: bool, keep_file: bool,
                     sinks: dict[str, Any]) -> tuple[Download, bool] | None:
    """The one-pass fetch of an .raw.xz (None if the server cannot serve its index by range):
    the verified Download and whether the raw file was written. Opened sinks go into `sinks`."""
    from uploader.intake import ranges, stream  # they import this module

    index = ranges.read_index(clients.http, source.url, work, config=config, clients=clients,
                              size=source.size)
    if index is None:
        return None
    disk, layout = index
    check_disk_size(Path(filename), disk, config.uploader.max_disk_mib * MIB)
    for name, opener in streams.items():
        try:
            sink = opener(source, disk, config=config, clients=clients)
        except Exception as exc:  # its handler reads the raw file and fails on its own terms
            log.warning("%s: cannot stream to %s (%s); it reads the raw file", filename, name,
                        exc)
            raw = True
            continue
        if sink is not None:
            sinks[name] = sink
    try:
        got = stream.stream_xz(clients.http, source.url, config=config, size=source.size,
                               sha256=source.sha256, disk_size=disk, sinks=sinks,
                               raw_path=raw_path if raw else None,
                               file_path=work / "src" / filename if keep_file else None,
                               layout=layout)
    except BaseException as exc:
        for sink in sinks.values():
            sink.abort(str(exc) or exc.__class__.__name__)
        sinks.clear()
        raise
    return got, raw
