"""fedimg-report: rebuild the state of every image from datagrepper history and render it.

With --explain NAME it writes nothing and prints, for that one image, the messages that made
its entry and every message that mentioned it but was not used, with the reason.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from reporter.explain import explain, render
from reporter.run import history_for, run, since_epoch
from shared.cli import add_config_argument, config_or_exit, setup_logging
from shared.config import ReporterConfig
from shared.errors import HistoryError, RunError

log = logging.getLogger("fedimg-report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedimg-report", description=__doc__)
    add_config_argument(parser)
    parser.add_argument("--output", metavar="DIR", help="where the site goes (required unless "
                        "--explain)")
    parser.add_argument("--explain", metavar="NAME", help="print which messages made image "
                        "NAME's entry and which mentioned it but were not used; write nothing")
    parser.add_argument("--datagrepper", metavar="URL", help="overrides [reporter] datagrepper")
    parser.add_argument("--full", action="store_true", help="refold the whole history")
    parser.add_argument("--check-amis", action="store_true", default=None,
                        help="ask EC2 which reported AMIs exist, are reporter.aws_owner's and "
                        "public; leave the others off (default: reporter.check_amis)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_or_exit(args, defaults_without_file=True)
    setup_logging(args.verbose)
    source = args.datagrepper or config.reporter.datagrepper
    if not source.startswith(("http://", "https://")):
        print(f"error: --datagrepper {source!r} is not an http(s) URL", file=sys.stderr)
        return 2
    try:
        since = since_epoch(config.reporter.since)
    except RunError as e:
        print(f"error: config: {config.path or 'built-in defaults'}: {e}", file=sys.stderr)
        return 2
    if args.explain is not None:
        return _explain(args.explain, source.rstrip("/"), config.reporter, since)
    if args.output is None:
        print("error: --output DIR is required (or --explain NAME)", file=sys.stderr)
        return 2
    if (args.check_amis or config.reporter.check_amis) and not config.reporter.aws_owner:
        print(f"error: config: {config.path}: checking AMIs needs reporter.aws_owner, the account "
              "that owns them", file=sys.stderr)
        return 2
    try:
        result = run(args.output, source.rstrip("/"), config.reporter, full=args.full,
                     check_amis=args.check_amis)
    except (HistoryError, RunError) as e:
        print(f"error: {e}; {args.output} was left as it was; run the same command again "
              "once datagrepper answers (it reads history from the last complete report on)",
              file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot write the report: {e}; {args.output} was left as it was",
              file=sys.stderr)
        return 1
    print(
        f"fedimg-report: {'full' if result.full else 'incremental'} run, "
        f"{result.fetched} messages fetched in {result.requests} requests, "
        f"{result.images} images ({result.read} messages read, {result.skipped} not understood"
        f"{f', {result.unplaced} rows without a usable time' if result.unplaced else ''}"
        f"{f', {result.future} dated after now set aside' if result.future else ''})"
        f"{_checked(result.ami_check)}"
        f" -> {args.output}"
    )
    return 0


def _checked(counts: dict[str, int] | None) -> str:
    if counts is None:
        return ""
    return (f"; AMIs checked with EC2: {counts['checked']}, {counts['left_off']} left off, "
            f"{counts['deregistered']} deregistered, {counts['deprecated']} deprecated")


def _explain(name: str, source: str, config: ReporterConfig, since: float) -> int:
    try:
        rows = history_for(source, config).fetch(since, time.time())
    except HistoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    mentions = explain(rows, name)
    print(render(name, mentions))
    return 0 if any(m.used for m in mentions) else 1


if __name__ == "__main__":
    sys.exit(main())
