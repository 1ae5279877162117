"""fedimg-report: rebuild the state of every image from datagrepper history and render it."""

from __future__ import annotations

import argparse
import sys

from shared.cli import add_config_argument, config_or_exit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedimg-report", description=__doc__)
    add_config_argument(parser)
    parser.add_argument("--output", metavar="DIR", required=True, help="where the site goes")
    parser.add_argument("--datagrepper", metavar="URL", help="overrides [reporter] datagrepper")
    parser.add_argument("--full", action="store_true", help="refold the whole history")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_or_exit(args)
    print("fedimg-report: the reporter is not implemented yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
