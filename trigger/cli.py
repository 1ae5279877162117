"""fedimg-build: start the configured Koji image builds (nightly, weekly, manual)."""

from __future__ import annotations

import argparse
import sys

from shared.cli import add_config_argument, config_or_exit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedimg-build", description=__doc__)
    add_config_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print, do not log in or start")
    parser.add_argument("--date", metavar="YYYY-MM-DD", help="the build date (default: today)")
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="job names (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_or_exit(args)
    print("fedimg-build: the trigger is not implemented yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
