"""fedimg-build: start the configured Koji image builds (nightly, weekly, manual).

Exit codes: 0 every selected job was started or already had its build for the date (or
--dry-run); 1 a job failed (hub unreachable, login refused, permission missing, Koji refused the
build, the build-started message could not be published); 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sys
from typing import Any

import koji

from shared.cli import add_config_argument, config_or_exit, setup_logging
from shared.config import EXIT_CONFIG_ERROR, Config, JobConfig
from shared.errors import (
    ConfigError,
    HubUnreachable,
    JobError,
    PermissionMissing,
    PublishFailed,
    TriggerError,
)
from trigger import koji_builds, started_event
from trigger.koji_login import NETWORK_ERRORS, login, short
from trigger.plan import BuildRequest, Overrides, plan, uses_respin

log = logging.getLogger("fedimg.trigger")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedimg-build", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print, do not log in or start")
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="the build date (default: today)")
    parser.add_argument("jobs", nargs="*", metavar="JOB",
                        help="job names (default: every nightly and weekly job)")
    parser.add_argument("--schedule", choices=["nightly", "weekly"],
                        help="run every job with this schedule (what the systemd timers use)")
    parser.add_argument("--force", action="store_true",
                        help="start even if the date's build exists (nightly/manual: next respin)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per job")
    parser.add_argument("--no-messages", action="store_true",
                        help="do not publish the build-started message")
    rc = parser.add_argument_group("release-candidate overrides (need named JOBs)")
    rc.add_argument("--repo", action="append", metavar="URL",
                    help="install from this repo instead of the job's repos (repeatable)")
    rc.add_argument("--name", help="image name instead of the job's image_name (one JOB only)")
    rc.add_argument("--version", help="version instead of the job's version")
    rc.add_argument("--release", help="exact release instead of the generated one")
    rc.add_argument("--scratch", action=argparse.BooleanOptionalAction, default=None,
                    help="override the job's scratch flag")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def parse_date(text: str | None, parser: argparse.ArgumentParser) -> datetime.date:
    if text is None:
        return datetime.datetime.now(datetime.UTC).date()
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        parser.error(f"--date: expected YYYY-MM-DD, got {text!r}")
        raise  # parser.error exits; this keeps type checkers content


def select_jobs(cfg: Config, args: argparse.Namespace,
                parser: argparse.ArgumentParser) -> list[JobConfig]:
    if args.jobs and args.schedule:
        parser.error("name JOBs or give --schedule, not both")
    if args.jobs:
        return [cfg.job(name) for name in dict.fromkeys(args.jobs)]  # ConfigError if unknown
    if args.schedule:
        return [j for j in cfg.trigger.jobs if j.schedule == args.schedule]
    return [j for j in cfg.trigger.jobs if j.schedule != "manual"]


def overrides_from(args: argparse.Namespace, jobs: list[JobConfig],
                   parser: argparse.ArgumentParser) -> Overrides:
    o = Overrides(repos=tuple(args.repo) if args.repo is not None else None, name=args.name,
                  version=args.version, release=args.release, scratch=args.scratch)
    if (o.any or o.scratch is not None) and not args.jobs:
        parser.error("--repo/--name/--version/--release/--scratch need named JOBs")
    if o.name is not None and len(jobs) != 1:
        parser.error("--name applies to exactly one JOB")
    return o


def emit(args: argparse.Namespace, action: str, request: BuildRequest, text: str,
         **extra: Any) -> None:
    if args.json:
        print(json.dumps({"action": action, **request.as_json(), **extra}, sort_keys=True))
    else:
        print(f"{action} {text}")
    sys.stdout.flush()


def run_job(session: koji.ClientSession, user: dict[str, Any], cfg: Config, job: JobConfig,
            request: BuildRequest, overrides: Overrides, args: argparse.Namespace) -> bool:
    """Start one job unless its build for the date exists; True when nothing went wrong."""
    existing = koji_builds.find_existing(session, user["id"], job, request, overrides)
    if existing and not args.force:
        emit(args, "exists", request,
             f"{request.job}: {existing.describe()} already covers {request.nvr}; "
             "nothing started", existing={"kind": existing.kind, "id": existing.id,
                                          "state": existing.state, "release": existing.release})
        return True
    if uses_respin(job, overrides):
        n = koji_builds.next_free_respin(session, user["id"], job, request.date, overrides)
        request = plan(job, request.date, respin=n, overrides=overrides)
    task_id = koji_builds.start(session, request, user["name"])
    task_url = f"{started_event.web_url(cfg.koji.hub)}/taskinfo?taskID={task_id}"
    emit(args, "started", request, f"{request.job}: {request.nvr} task {task_id} {task_url}",
         task_id=task_id, task_url=task_url)
    if args.no_messages:
        return True
    try:
        started_event.publish(request, task_id, cfg.koji.hub, cfg.bus.publish_timeout)
    except PublishFailed as exc:
        print(f"error: {request.job}: task {task_id} was started but the build-started message "
              f"could not be published: {exc}", file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cfg = config_or_exit(args)
    setup_logging(args.verbose)
    date = parse_date(args.date, parser)
    try:
        jobs = select_jobs(cfg, args, parser)
        overrides = overrides_from(args, jobs, parser)
        requests = [plan(job, date, overrides=overrides) for job in jobs]
    except (ConfigError, JobError) as exc:
        print(f"error: config: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if not jobs:
        what = f"with schedule {args.schedule!r}" if args.schedule else "nightly or weekly"
        print(f"fedimg-build: no {what} jobs configured in {cfg.path}; nothing to do",
              file=sys.stderr)
        return 0

    if args.dry_run:
        for request in requests:
            emit(args, "would-start", request, request.describe())
        return 0

    try:
        session, user = login(cfg.koji)
    except TriggerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info("logged in to %s as %s", cfg.koji.hub, user["name"])
    ok = True
    try:
        for job, request in zip(jobs, requests, strict=True):
            try:
                ok = run_job(session, user, cfg, job, request, overrides, args) and ok
            except koji.ActionNotAllowed as exc:  # a read call refused: same story as a build
                raise PermissionMissing(short(exc)) from None
            except NETWORK_ERRORS as exc:
                raise HubUnreachable(
                    f"Koji hub {cfg.koji.hub} stopped answering (job {job.name}, after "
                    f"{cfg.koji.retries + 1} attempt(s)): {short(exc)}") from None
            except koji.GenericError as exc:  # this job's request was refused; try the others
                print(f"error: {job.name}: Koji refused {request.hub_method} for "
                      f"{request.nvr}: {short(exc)}", file=sys.stderr)
                ok = False
    except TriggerError as exc:  # the same for every remaining job: stop here
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            session.logout()
        except Exception:  # noqa: BLE001 - best effort; the hub expires sessions anyway
            log.debug("logout failed", exc_info=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
