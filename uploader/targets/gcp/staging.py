"""The staging object: the verified archive in the bucket, uploaded resumably, crc32c checked.

GCE reads an image's archive from Cloud Storage. The upload is resumable (chunks of
gcp.upload_chunk_mib MiB), carries the file's crc32c so Cloud Storage itself refuses a corrupted
upload, and is compared once more with the object's crc32c afterwards. An interrupted resumable
upload leaves no object (Cloud Storage only makes one when the last chunk arrives), and an
object left by a run that died later is found by its sha256 metadata and reused, or replaced
when it holds other bytes. The object is deleted once the image exists.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import google_crc32c

from shared.errors import CloudError
from uploader.targets.gcp.settings import GcpConfig

log = logging.getLogger(__name__)

META_SHA256 = "fedimg-sha256"
CHUNK = 1 << 20


def file_crc32c(path: Path) -> str:
    """The base64 crc32c of a file, as Cloud Storage reports it."""
    checksum = google_crc32c.Checksum()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode()


def source_url(bucket: str, name: str) -> str:
    """The URL images.insert reads an archive from."""
    return f"https://storage.googleapis.com/{bucket}/{name}"


def ensure_object(storage: Any, gcp: GcpConfig, name: str, path: Path, sha256: str) -> str:
    """The archive at gs://bucket/name (found or uploaded); returns its source URL."""
    bucket = storage.bucket(gcp.bucket)
    crc = file_crc32c(path)
    size = path.stat().st_size
    found = bucket.get_blob(name, timeout=gcp.timeout)
    if found is not None:
        if ((found.metadata or {}).get(META_SHA256) == sha256 and found.crc32c == crc
                and found.size == size):
            log.info("gs://%s/%s: found, crc32c %s", gcp.bucket, name, crc)
            return source_url(gcp.bucket, name)
        log.info("gs://%s/%s: holds other bytes, replacing it", gcp.bucket, name)
        found.delete(timeout=gcp.timeout, if_generation_match=found.generation)
    blob = bucket.blob(name, chunk_size=max(1, gcp.upload_chunk_mib) * (1 << 20))
    blob.metadata = {META_SHA256: sha256}
    blob.crc32c = crc  # sent with the upload: Cloud Storage refuses a mismatch itself
    # if_generation_match=0: never overwrite an object another run made meanwhile
    blob.upload_from_filename(str(path), content_type="application/gzip", checksum="crc32c",
                              if_generation_match=0, timeout=gcp.timeout)
    blob.reload(timeout=gcp.timeout)
    if blob.crc32c != crc or blob.size != size:
        raise CloudError(f"gs://{gcp.bucket}/{name}: stored crc32c {blob.crc32c}/{blob.size} "
                       f"bytes, the file has {crc}/{size}")
    log.info("gs://%s/%s: uploaded %d bytes, crc32c %s", gcp.bucket, name, size, crc)
    return source_url(gcp.bucket, name)


def remove_object(storage: Any, gcp: GcpConfig, name: str) -> bool:
    """Delete the staging object if it is there; True if one was deleted."""
    from google.api_core.exceptions import NotFound

    try:
        storage.bucket(gcp.bucket).blob(name).delete(timeout=gcp.timeout)
    except NotFound:
        return False
    log.info("gs://%s/%s: deleted", gcp.bucket, name)
    return True
