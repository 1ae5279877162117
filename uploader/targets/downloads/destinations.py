"""Where download artifacts go: a local directory (the download master) or an S3 prefix.

Both give the same guarantees: a file appears under its final name only when complete (directory:
temporary name in the same directory, fsync, rename; S3: an object exists only once its
(multipart) upload completed), and the CHECKSUM is merged with the entries already there and
replaced in one step, after the files.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig

from shared.config import AwsConfig
from shared.errors import DestinationError
from shared.files import fsync_path, sha256_file
from uploader.aws_clients import ClientFactory, error_code
from uploader.targets.downloads import checksum
from uploader.targets.downloads.checksum import CHECKSUM_NAME, Entry

log = logging.getLogger(__name__)

MiB = 1 << 20
CONTENT_TYPES = {
    "qcow2": "application/x-qemu-disk",
    "raw.tar.xz": "application/x-xz",
    CHECKSUM_NAME: "text/plain; charset=utf-8",
}
PART_MARK = ".part-"  # temporary names: ".<final name>.part-<random>"
CHECKSUM_ATTEMPTS = 5  # S3 CHECKSUM read-merge-write rounds lost to a concurrent writer


class Destination(Protocol):
    def describe(self, rel_dir: str, name: str = "") -> str: ...

    def read_checksum(self, rel_dir: str) -> dict[str, Entry]: ...

    def has(self, rel_dir: str, entry: Entry) -> bool: ...

    def staging(self, rel_dir: str, scratch: Path) -> contextlib.AbstractContextManager[Staging]:
        ...

    def store(self, rel_dir: str, staged: Path, name: str, fmt: str, sha256: str) -> None: ...

    def update_checksum(self, rel_dir: str, entries: Iterable[Entry]) -> None: ...


class Staging:
    """Temporary output paths for one run; whatever is left of them is deleted on exit.

    Each temporary file is created here and flock()ed for as long as the run lives, so another
    run can tell a file being written (locked) from one left by a killed run (unlocked: the
    kernel drops the lock with the process) and remove only the latter.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.paths: list[Path] = []
        self._locks: list[int] = []

    def path_for(self, name: str) -> Path:
        path = self.directory / f".{name}{PART_MARK}{secrets.token_hex(4)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._locks.append(fd)
        self.paths.append(path)
        return path

    def cleanup(self) -> None:
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()


def _abandoned(path: Path, cutoff: float) -> bool:
    """True when no live run holds the temporary file's lock (where the filesystem cannot
    lock: when it is older than any live run can be)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return os.fstat(fd).st_mtime < cutoff
    finally:
        os.close(fd)


class DirectoryDestination:
    """A directory tree, typically the download master that mirrors rsync from."""

    def __init__(self, root: Path, stale_after: float) -> None:
        self.root = root
        # Where the filesystem cannot flock, a temporary file older than this belongs to a run
        # that was killed before it could clean up: no live run outlasts the conversion timeout.
        self.stale_after = stale_after

    def describe(self, rel_dir: str, name: str = "") -> str:
        return str(self.root / rel_dir / name)

    def _dir(self, rel_dir: str) -> Path:
        return self.root / rel_dir

    def read_checksum(self, rel_dir: str) -> dict[str, Entry]:
        try:
            return checksum.parse((self._dir(rel_dir) / CHECKSUM_NAME).read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            raise DestinationError(f"cannot read {self._dir(rel_dir) / CHECKSUM_NAME}: {e}") from e

    def has(self, rel_dir: str, entry: Entry) -> bool:
        path = self._dir(rel_dir) / entry.name
        try:
            if not path.is_file() or path.stat().st_size != entry.size:
                return False
            return sha256_file(path) == entry.sha256
        except OSError as e:
            log.warning("cannot check %s (%s); producing it again", path, e)
            return False

    @contextlib.contextmanager
    def staging(self, rel_dir: str, scratch: Path) -> Iterator[Staging]:
        # Produce straight into the destination directory: the rename is then atomic and no
        # second copy of hundreds of MiB is needed.
        directory = self._dir(rel_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DestinationError(f"cannot create {directory}: {e}") from e
        self._remove_stale(directory)
        staging = Staging(directory)
        try:
            yield staging
        finally:
            staging.cleanup()

    def _remove_stale(self, directory: Path) -> None:
        cutoff = time.time() - self.stale_after
        for path in directory.glob(f".*{PART_MARK}*"):
            with contextlib.suppress(OSError):
                if _abandoned(path, cutoff):
                    log.info("removing %s, left behind by an interrupted run", path)
                    path.unlink()

    def store(self, rel_dir: str, staged: Path, name: str, fmt: str, sha256: str) -> None:
        final = self._dir(rel_dir) / name
        try:
            fsync_path(staged)
            staged.chmod(0o644)
            os.replace(staged, final)
            fsync_path(final.parent)
        except OSError as e:
            raise DestinationError(f"cannot store {final}: {e}") from e

    def update_checksum(self, rel_dir: str, entries: Iterable[Entry]) -> None:
        directory = self._dir(rel_dir)
        final = directory / CHECKSUM_NAME
        tmp = directory / f".{CHECKSUM_NAME}{PART_MARK}{secrets.token_hex(4)}"
        try:
            lock = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise DestinationError(f"cannot open {directory}: {e}") from e
        try:
            # Images of other arches land in the same directory at the same time: serialise
            # read-merge-write on the directory itself (no lock file to leave behind).
            fcntl.flock(lock, fcntl.LOCK_EX)
            present = {p.name for p in directory.iterdir() if p.is_file()}
            merged = checksum.merge(self.read_checksum(rel_dir), entries, present)
            with open(tmp, "x", encoding="utf-8") as f:
                f.write(checksum.render(merged))
                f.flush()
                os.fsync(f.fileno())
            tmp.chmod(0o644)
            os.replace(tmp, final)
            fsync_path(directory)
        except OSError as e:
            raise DestinationError(f"cannot write {final}: {e}") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.close(lock)  # releases the flock


class S3Destination:
    """`s3://bucket/prefix`: objects under prefix/<release>/<channel>/, uploaded with boto3's
    managed transfer (multipart, parallel parts, retries). Each artifact carries its sha256 as
    object metadata, so a re-run can tell a complete matching object without downloading it.

    `client` is an S3 client from uploader.aws_clients.ClientFactory, so the [aws] retry and
    timeout policy applies here as it does to the AWS target."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.transfer = TransferConfig(
            multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=4,
        )

    @classmethod
    def from_url(cls, client: Any, url: str) -> S3Destination:
        rest = url[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise DestinationError(f"no bucket in {url!r}")
        return cls(client, bucket, prefix)

    def key(self, rel_dir: str, name: str) -> str:
        return "/".join(p for p in (self.prefix, rel_dir, name) if p)

    def describe(self, rel_dir: str, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(rel_dir, name)}"

    def _get_checksum(self, rel_dir: str) -> tuple[dict[str, Entry], str | None]:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(rel_dir, CHECKSUM_NAME))
        except botocore.exceptions.ClientError as e:
            if error_code(e) in ("NoSuchKey", "404"):
                return {}, None
            raise DestinationError(f"cannot read {self.describe(rel_dir, CHECKSUM_NAME)}: {e}"
                                   ) from e
        except botocore.exceptions.BotoCoreError as e:
            raise DestinationError(f"cannot read {self.describe(rel_dir, CHECKSUM_NAME)}: {e}"
                                   ) from e
        with contextlib.closing(obj["Body"]) as body:
            text = body.read().decode("utf-8", "replace")
        return checksum.parse(text), obj.get("ETag")

    def read_checksum(self, rel_dir: str) -> dict[str, Entry]:
        return self._get_checksum(rel_dir)[0]

    def has(self, rel_dir: str, entry: Entry) -> bool:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(rel_dir, entry.name))
        except botocore.exceptions.ClientError as e:
            if error_code(e) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise DestinationError(f"cannot check {self.describe(rel_dir, entry.name)}: {e}"
                                   ) from e
        except botocore.exceptions.BotoCoreError as e:
            raise DestinationError(f"cannot check {self.describe(rel_dir, entry.name)}: {e}"
                                   ) from e
        return (head.get("ContentLength") == entry.size
                and head.get("Metadata", {}).get("sha256") == entry.sha256)

    @contextlib.contextmanager
    def staging(self, rel_dir: str, scratch: Path) -> Iterator[Staging]:
        # Artifacts are produced beside the raw image (the uploader's work space), then uploaded.
        directory = Path(tempfile.mkdtemp(prefix=".fedimg-downloads-", dir=scratch))
        try:
            yield Staging(directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def store(self, rel_dir: str, staged: Path, name: str, fmt: str, sha256: str) -> None:
        try:
            self.client.upload_file(
                str(staged), self.bucket, self.key(rel_dir, name),
                ExtraArgs={"Metadata": {"sha256": sha256},
                           "ContentType": CONTENT_TYPES.get(fmt, "application/octet-stream")},
                Config=self.transfer,
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                S3UploadFailedError, OSError) as e:
            raise DestinationError(f"cannot upload {self.describe(rel_dir, name)}: {e}") from e

    def _present(self, rel_dir: str) -> set[str]:
        prefix = self.key(rel_dir, "") + "/"
        names: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for obj in page.get("Contents", []):
                names.add(obj["Key"][len(prefix):])
        return names

    def update_checksum(self, rel_dir: str, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        key = self.key(rel_dir, CHECKSUM_NAME)
        for attempt in range(1, CHECKSUM_ATTEMPTS + 1):
            existing, etag = self._get_checksum(rel_dir)
            try:
                merged = checksum.merge(existing, entries, self._present(rel_dir))
                # Conditional write: if another uploader replaced the CHECKSUM since we read
                # it, S3 answers 412 and we merge again instead of dropping its entries.
                condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
                self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=checksum.render(merged).encode(),
                    ContentType=CONTENT_TYPES[CHECKSUM_NAME], **condition,
                )
                return
            except botocore.exceptions.ClientError as e:
                code = error_code(e)
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                    log.info("%s changed while merging (attempt %d); merging again",
                             self.describe(rel_dir, CHECKSUM_NAME), attempt)
                    continue
                raise DestinationError(f"cannot write {self.describe(rel_dir, CHECKSUM_NAME)}: "
                                       f"{e}") from e
            except botocore.exceptions.BotoCoreError as e:
                raise DestinationError(f"cannot write {self.describe(rel_dir, CHECKSUM_NAME)}: "
                                       f"{e}") from e
        raise DestinationError(f"{self.describe(rel_dir, CHECKSUM_NAME)} kept changing; gave up "
                               f"after {CHECKSUM_ATTEMPTS} merges")


def open_destination(
    destination: str, clients: Any, aws: AwsConfig, stale_after: float,
) -> Destination:
    """The configured destination: "s3://bucket/prefix" (an S3 client under the [aws] policy)
    or a directory path."""
    if destination.startswith("s3://"):
        if clients.aws is None:
            raise DestinationError("downloads.destination is on S3 but no AWS session was given")
        return S3Destination.from_url(ClientFactory(clients.aws, aws).s3(), destination)
    return DirectoryDestination(Path(destination), stale_after)
