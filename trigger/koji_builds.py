"""Ask Koji what this user already started for a job today, and start the build when nothing is.

Idempotency lives in Koji, not in a local state file: the hub's task list (owned by the logged-in
user, same method, created since the start of the build date, UTC) and its builds (same NVR) are
the record. A task counts as "already there" while it is FREE/OPEN/ASSIGNED or once it CLOSED
(succeeded); a FAILED or CANCELED one does not, so the next timer run retries it. For releases
with a respin counter (nightly `<date>.n.<N>`, manual `<date>.<N>`) every task of that day, failed
ones too, uses up its N, so a retry after a failure gets the next free N.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import koji

from shared.config import JobConfig
from shared.errors import PermissionMissing
from trigger.plan import BuildRequest, Overrides, plan, respin_of, uses_respin

LIVE_TASK_STATES = [koji.TASK_STATES[s] for s in ("FREE", "OPEN", "ASSIGNED", "CLOSED")]
LIVE_BUILD_STATES = {koji.BUILD_STATES["BUILDING"], koji.BUILD_STATES["COMPLETE"]}
MAX_RESPINS = 1000  # a bound on the respin search; a day never has this many


@dataclasses.dataclass(frozen=True)
class Existing:
    """A task or build that already covers a request."""

    kind: str  # "task" | "build"
    id: int
    state: str
    release: str

    def describe(self) -> str:
        return f"{self.kind} {self.id} ({self.state.lower()}, release {self.release})"


def search_from(date: datetime.date, today: datetime.date | None = None) -> float:
    """Epoch seconds (what listTasks' createdAfter accepts) of the first second, UTC, of the
    build date, or of today when the date lies in the future (a build "for" a future date can
    only have been created from today on)."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    day = min(date, today)
    return datetime.datetime.combine(day, datetime.time(), datetime.UTC).timestamp()


def _request_nvr(task: dict[str, Any]) -> tuple[str, str, str] | None:
    """name, version and release of an image task's request (decoded), or None."""
    req = task.get("request")
    if not isinstance(req, list) or len(req) < 2:
        return None
    opts = req[-1] if isinstance(req[-1], dict) else {}
    release = opts.get("release")
    if not isinstance(release, str):
        return None
    return str(req[0]), str(req[1]), release


def tasks_of_the_day(session: koji.ClientSession, user_id: int, method: str,
                     date: datetime.date, name: str, version: str,
                     states: list[int] | None = None) -> list[tuple[dict[str, Any], str]]:
    """(task, release) for this user's `method` tasks since the date began, same name/version."""
    opts: dict[str, Any] = {"owner": user_id, "method": method, "decode": True,
                            "createdAfter": search_from(date)}
    if states is not None:
        opts["state"] = states
    out = []
    for task in session.listTasks(opts=opts, queryOpts={"order": "id"}):
        nvr = _request_nvr(task)
        if nvr and nvr[0] == name and nvr[1] == version:
            out.append((task, nvr[2]))
    return out


def _build_state(session: koji.ClientSession, nvr: str) -> dict[str, Any] | None:
    build = session.getBuild(nvr)
    if build and build.get("state") in LIVE_BUILD_STATES:
        return build
    return None


def find_existing(session: koji.ClientSession, user_id: int, job: JobConfig,
                  request: BuildRequest, overrides: Overrides) -> Existing | None:
    """A live or finished task/build that already does what `request` asks, else None.

    For respin releases any respin of the day counts (a second nightly run the same day must not
    start respin 1); otherwise the exact release must match.
    """
    respins = uses_respin(job, overrides)
    for task, release in tasks_of_the_day(session, user_id, request.method, request.date,
                                          request.name, request.version, LIVE_TASK_STATES):
        same = (respin_of(job, request.date, release) is not None if respins
                else release == request.release)
        if same:
            return Existing("task", task["id"], koji.TASK_STATES[task["state"]], release)
    build = _build_state(session, request.nvr)
    if build:
        return Existing("build", build["id"], koji.BUILD_STATES[build["state"]],
                        build["release"])
    return None


def next_free_respin(session: koji.ClientSession, user_id: int, job: JobConfig,
                     date: datetime.date, overrides: Overrides) -> int:
    """The lowest respin above every respin this user's tasks used that day, skipping any NVR
    Koji already has as a live build (someone else may have built it)."""
    first = plan(job, date, respin=0, overrides=overrides)
    used = [respin_of(job, date, release)
            for _, release in tasks_of_the_day(session, user_id, first.method, date,
                                               first.name, first.version)]
    n = max((u for u in used if u is not None), default=-1) + 1
    for candidate in range(n, n + MAX_RESPINS):
        if not _build_state(session, plan(job, date, respin=candidate, overrides=overrides).nvr):
            return candidate
    raise RuntimeError(f"no free respin for job {job.name} on {date}")  # unreachable in practice


def start(session: koji.ClientSession, request: BuildRequest, user: str) -> int:
    """Create the Koji task; a missing permission becomes PermissionMissing naming it."""
    try:
        return int(getattr(session, request.hub_method)(
            *request.hub_args, opts=request.hub_opts))
    except koji.ActionNotAllowed as exc:
        raise PermissionMissing(_permission_line(request, user, exc)) from None
    except koji.GenericError as exc:
        # older hubs and proxies report the permission check as a plain fault
        if "permission" in str(exc).lower():
            raise PermissionMissing(_permission_line(request, user, exc)) from None
        raise


def _permission_line(request: BuildRequest, user: str, exc: Exception) -> str:
    perm = request.method  # the hub checks 'image' for buildImageOz, the image type otherwise
    said = " ".join(str(exc).split())
    return (f"Koji user {user!r} lacks the '{perm}' permission needed for {request.hub_method} "
            f"(job {request.job}; hub said: {said}); ask Koji admins to grant it")
