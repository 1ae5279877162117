"""One reporter run: checkpoint -> fetch -> fold -> render -> atomic publish.

The checkpoint is the previous DIR/images.json (history.last_timestamp, history.source) together
with DIR/state.json, the fold state it was rendered from (per-field versions and the msg ids of
the overlap window). An incremental run reads [last_timestamp - overlap, now] and folds it onto
that state; because the fold is a function of the message set (fold.py), the result is exactly
what a full run over the whole history gives. Without a usable checkpoint the run is full.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from reporter import claims, outputs, site
from reporter.atomic_dir import locked, publish
from reporter.claims import ClientFor, ec2_clients
from reporter.fold import FoldState, fold_onto, image_records, state_from_json, state_to_json
from reporter.history import History
from shared.config import ReporterConfig
from shared.errors import RunError

log = logging.getLogger(__name__)

STATE_FILE = "state.json"


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


def load_checkpoint(directory: Path, source: str) -> tuple[FoldState, float] | None:
    """(state, overlap) of the previous run in ``directory``; None (full run) says why."""
    report, state_file = directory / "images.json", directory / STATE_FILE
    if not report.exists():
        log.info("no previous %s: full run", report)
        return None
    try:
        previous = json.loads(report.read_text())
        saved = json.loads(state_file.read_text())
        state = state_from_json(saved)
        overlap = float(saved["overlap"])
        hist = previous["history"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("previous report in %s is not a usable checkpoint (%s): full run", directory, e)
        return None
    if hist.get("source") != source or saved.get("source") != source:
        log.info("previous report read %s, this run reads %s: full run", hist.get("source"), source)
        return None
    if hist.get("last_timestamp") != state.last_timestamp:
        log.warning("images.json and %s disagree about the checkpoint: full run", STATE_FILE)
        return None
    return state, overlap


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
    checkpoint = None if full else load_checkpoint(directory, source)
    if checkpoint is not None and checkpoint[0].last_timestamp is not None:
        state, overlap = checkpoint
        start = state.last_timestamp - overlap
    else:
        state, overlap = (checkpoint[0], checkpoint[1]) if checkpoint else (FoldState(), None)
        start = since_epoch(config.since)
    overlap = float(config.overlap) if overlap is None else overlap
    history = history or history_for(source, config)
    incremental = checkpoint is not None
    log.info("%s run: reading %s from %s to %s", "incremental" if incremental else "full",
             source, _iso(start), _iso(end))
    fetched = 0
    for rows in history.stream(start, end):  # folded window by window: nothing accumulates
        fetched += len(rows)
        fold_onto(state, rows, copy_state=False)

    generated = _iso(end)
    images = image_records(state)
    hist = outputs.history_block(state, source)
    if ec2 is not None:
        hist["ami_check"] = claims.check(images, config.aws_owner, ec2).as_dict()
    files: dict[str, bytes] = {
        "images.json": outputs.dumps(outputs.images_json(images, state, source, generated, hist)),
        "latest.json": outputs.dumps(outputs.latest_json(images, state, source, generated, hist)),
        # sorted: register maps fill in arrival order, which differs between runs
        STATE_FILE: outputs.dumps(state_to_json(state, source, overlap), sort_keys=True),
    }
    shown = claims.launchable(images)  # deregistered AMIs are history, not offers
    for path, doc in outputs.streams(shown, state).items():
        files[path] = outputs.dumps(doc)
    files.update(site.render(shown, hist, generated))
    publish(directory, files)
    log.info("published %d images (%d messages read, %d not understood) to %s",
             len(images), state.read, state.skipped, directory)
    return RunResult(
        full=not incremental, start=start, end=end, fetched=fetched, images=len(images),
        read=state.read, skipped=state.skipped, requests=history.stats.requests,
        unplaced=state.unplaced, future=history.stats.future, ami_check=hist.get("ami_check"),
    )


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
