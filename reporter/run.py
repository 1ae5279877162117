"""One reporter run: checkpoint -> fetch -> fold -> render -> atomic publish.

The checkpoint is the state store beside DIR (reporter.store): the fold state of every image,
what was rendered from it, the counters and the msg ids of the overlap window. An incremental
run reads [last_timestamp - overlap, now], folds it onto the images its rows name (loaded from
the store as rows name them) and renders what changed (reporter.build); because the fold is a
function of the message set (fold.py), the result is exactly what a full run over the whole
history gives. Without a usable checkpoint the run is full.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from reporter import build, outputs, site
from reporter.atomic_dir import locked, publish_with
from reporter.claims import ClientFor, ec2_clients
from reporter.fold import FoldState, fold_onto
from reporter.history import History
from reporter.store import Store, leftovers, open_previous
from reporter.store import path_for as store_path
from shared.config import ReporterConfig
from shared.errors import RunError

log = logging.getLogger(__name__)

OLD_STATE_FILE = "state.json"  # where an earlier version kept the state, inside DIR
CACHE = 5_000  # images a run keeps in memory while folding; the rest wait in the store


@dataclass
class RunResult:
    full: bool
    start: float
    end: float
    fetched: int
    images: int
    read: int
    skipped: int
    requests: int
    unplaced: int = 0  # rows skipped that cannot be placed in time (not in the report's totals)
    future: int = 0  # rows dated after now, set aside until their time has come
    ami_check: dict[str, int] | None = None  # what the AMI check did (None: not asked)


def since_epoch(since: str) -> float:
    try:
        day = dt.datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise RunError(f"reporter.since is {since!r}, expected a date YYYY-MM-DD") from None
    return day.timestamp()


def load_checkpoint(directory: Path, source: str) -> Store | None:
    """The state store of the previous run into ``directory``; None (full run) says why."""
    path = store_path(directory)
    if not (directory / "images.json").exists():
        log.info("no previous %s: full run", directory / "images.json")
        return None
    if not path.exists():
        if (directory / OLD_STATE_FILE).exists():
            log.warning("%s is the state of an earlier fedimg-report; this one keeps it in %s: "
                        "full run", directory / OLD_STATE_FILE, path)
        else:
            log.info("no state store %s: full run", path)
        return None
    return open_previous(path, source)


def history_for(source: str, config: ReporterConfig) -> History:
    """The datagrepper client with the configured timeouts, retries and paging."""
    return History(
        source,
        timeout=config.timeout,
        retries=config.retries,
        concurrency=config.concurrency,
        max_pages=config.max_pages,
        window_days=config.window_days,
    )


def run(
    output: str | Path,
    source: str,
    config: ReporterConfig,
    *,
    full: bool = False,
    history: History | None = None,
    now: float | None = None,
    check_amis: bool | None = None,
    ec2: ClientFor | None = None,
) -> RunResult:
    """One run into ``output``; ``check_amis`` (default: the config's) asks EC2 about every
    reported AMI (reporter.claims) through ``ec2`` (default: boto3's credential chain)."""
    directory = Path(output)
    check = config.check_amis if check_amis is None else check_amis
    if check and not config.aws_owner:
        raise RunError("checking AMIs needs reporter.aws_owner, the account that owns them")
    with locked(directory):
        return _run(directory, source, config, full, history, now,
                    (ec2 or ec2_clients()) if check else None)


def _run(directory: Path, source: str, config: ReporterConfig, full: bool,
         history: History | None, now: float | None, ec2: ClientFor | None) -> RunResult:
    end = time.time() if now is None else now
    path = store_path(directory)
    leftovers(path)
    store = None if full else load_checkpoint(directory, source)
    incremental = store is not None
    try:
        if store is not None:
            state = store.fold_state()
            overlap = float(store.meta("overlap"))
            start = (state.last_timestamp - overlap if state.last_timestamp is not None
                     else since_epoch(config.since))
        else:
            store = Store(path, fresh=True)
            state = FoldState(load=store.load)
            overlap = float(config.overlap)
            start = since_epoch(config.since)
        result = _fold_and_publish(directory, source, config, store, state, overlap, start, end,
                                   incremental, history, ec2)
    except BaseException:
        if store is not None:
            store.abandon()
        raise
    store.commit()  # after publishing: a run killed before this is done again by the next
    return result


def _fold_and_publish(directory: Path, source: str, config: ReporterConfig, store: Store,
                      state: FoldState, overlap: float, start: float, end: float,
                      incremental: bool, history: History | None,
                      ec2: ClientFor | None) -> RunResult:
    history = history or history_for(source, config)
    log.info("%s run: reading %s from %s to %s", "incremental" if incremental else "full",
             source, _iso(start), _iso(end))
    fetched = 0
    clock = time.perf_counter()
    for rows in history.stream(start, end):  # folded window by window: nothing accumulates
        fetched += len(rows)
        fold_onto(state, rows, copy_state=False)
        if len(state.images) > CACHE:
            store.save(state.images)  # images of older windows are rarely touched again
            state.images.clear()
    store.save(state.images)
    state.images.clear()
    clock = _took(clock, "read and folded %d rows (%d images touched)", fetched,
                  len(state.touched))

    generated = _iso(end)
    env = site.environment()
    changes = build.refresh(store, env, state.touched, not incremental, config.aws_owner, ec2)
    clock = _took(clock, "rendered the images again")
    hist = outputs.history_block(state, source)
    if changes.ami_check is not None:
        hist["ami_check"] = changes.ami_check
    # pages are reused only from the tree this store last published (not one a killed run, or
    # another program, put in its place)
    previous = directory if incremental and build.published_by(store, directory) else None
    publish_with(directory, lambda root: build.write(root, previous, store, env, changes, hist,
                                                     generated, state.last_timestamp))
    clock = _took(clock, "wrote and published the report")
    store.checkpoint(state, source, overlap)
    images = store.db.execute("SELECT count(*) FROM images").fetchone()[0]
    log.info("published %d images (%d messages read, %d not understood) to %s",
             images, state.read, state.skipped, directory)
    return RunResult(
        full=not incremental, start=start, end=end, fetched=fetched, images=images,
        read=state.read, skipped=state.skipped, requests=history.stats.requests,
        unplaced=state.unplaced, future=history.stats.future, ami_check=changes.ami_check,
    )


def _took(since: float, what: str, *args: object) -> float:
    now = time.perf_counter()
    log.info(what + " in %.1f s", *args, now - since)
    return now


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
