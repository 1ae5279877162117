"""fedimg-upload: run the uploader's handlers once, without the bus (manual initiation)."""

from __future__ import annotations

import argparse
import sys

from shared.cli import add_config_argument, config_or_exit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedimg-upload", description=__doc__)
    add_config_argument(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--koji-task", metavar="ID", type=int, help="a Koji image task id")
    source.add_argument("--koji-build", metavar="ID_OR_NVR", help="a Koji image build id or NVR")
    source.add_argument("--compose", metavar="COMPOSE_ID", help="a Pungi compose id")
    parser.add_argument("--dry-run", action="store_true", help="list the images, fetch nothing")
    parser.add_argument("--json", action="store_true", help="with --dry-run: one JSON per image")
    parser.add_argument("--no-messages", action="store_true", help="publish no bus messages")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_or_exit(args)
    print("fedimg-upload: the upload handlers are not implemented yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
