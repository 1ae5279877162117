"""Koji access for reads: an anonymous ClientSession with bounded waits, and PathInfo for URLs.

Every component that asks Koji about tasks and builds goes through `anonymous_session`, so the
timeout and retry budget come from one place ([koji] timeout / retries / retry_interval), and
every file URL is built by `path_info` under the configured `koji.topurl`, never taken from a
message. Ids that reach the hub pass `koji_id` first: an XML-RPC client cannot even send an
integer past 64 bits, and no Koji row has an id past the 32-bit range.
"""

from __future__ import annotations

import koji

from shared.config import KojiConfig
from shared.errors import BadInput, shown

__all__ = ["MAX_ID", "anonymous_session", "build_image_url", "koji_id", "path_info",
           "task_file_url"]

# Koji's task, build, user and archive ids are PostgreSQL `serial` columns (int4).
MAX_ID = 2**31 - 1


def koji_id(value: object, what: str) -> int:
    """`value` if it is a Koji id (an int from 1 to MAX_ID, not a bool), else BadInput saying
    what `what` was instead; a bigger number names nothing on any hub."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise BadInput(f"{what} must be a Koji id (an integer from 1 to {MAX_ID}), "
                       f"got {shown(value)}")
    return value


def anonymous_session(cfg: KojiConfig) -> koji.ClientSession:
    """A not-logged-in session to cfg.hub: read calls only, each bounded in time and retries.

    `anon_retry` makes koji retry connection errors for anonymous sessions too (read calls are
    idempotent); `max_retries`/`retry_interval` bound that, `timeout` bounds each HTTP request.
    """
    opts: dict = {
        "timeout": cfg.timeout,
        "max_retries": cfg.retries,
        "retry_interval": cfg.retry_interval,
        "anon_retry": True,
        "offline_retry": False,
    }
    if cfg.serverca:
        opts["serverca"] = cfg.serverca
    return koji.ClientSession(cfg.hub, opts=opts)


def path_info(cfg: KojiConfig) -> koji.PathInfo:
    """koji.PathInfo rooted at the configured topurl (files are fetched only below it)."""
    return koji.PathInfo(topdir=cfg.topurl.rstrip("/"))


def task_file_url(cfg: KojiConfig, task_id: int, filename: str) -> str:
    """<topurl>/work/tasks/<id % 10000>/<id>/<filename>."""
    return f"{path_info(cfg).task(task_id)}/{filename}"


def build_image_url(cfg: KojiConfig, build: dict, filename: str) -> str:
    """<topurl>/packages/<name>/<version>/<release>/images/<filename> for an image build."""
    return f"{path_info(cfg).imagebuild(build)}/{filename}"
