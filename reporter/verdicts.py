"""fedimg-announce: release engineering and QE put a promotion or a QE result on the bus.

    fedimg-announce promote NAME [--note TEXT] [--agent WHO]
    fedimg-announce qe NAME --result passed|failed|needs_inspection --suite SUITE [--url U] ...

The message (ImagePromotedV1 / QeResultV1) goes to the bus like every other fedimg event, so
datanommer stores it and the next fedimg-report shows the image as official / with its QE
status: the history stays the only source of truth. The bus comes from fedora-messaging's own
configuration (FEDORA_MESSAGING_CONF, default /etc/fedora-messaging/config.toml).

The image identity is read from NAME with shared.images.identify; --release, --subvariant,
--arch and --channel fill what the name cannot say (they never override the name).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from shared import bus
from shared.errors import PublishFailed
from shared.images import CHANNELS, Hint, identify
from shared.messages import ImagePromotedV1, QeResultV1
from shared.messages.base import FedimgMessage

EXIT_BAD_INPUT = 2
EXIT_NOT_PUBLISHED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedimg-announce", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="event", required=True)
    for name, help_ in (("promote", "declare NAME the official image of its release"),
                        ("qe", "report a QE result for NAME")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("name", metavar="NAME", help="image name as the report shows it")
        p.add_argument("--release", help="if the name does not say (e.g. 41, Rawhide)")
        p.add_argument("--subvariant", help="if the name does not say (e.g. Cloud_Base)")
        p.add_argument("--arch", help="if the name does not say (x86_64, aarch64)")
        p.add_argument("--agent", default=_default_agent(), help="who announces (default: you)")
        p.add_argument("--note", help="free text shown with the image")
        p.add_argument("--dry-run", action="store_true", help="print the message, send nothing")
        p.add_argument("--timeout", type=int, default=bus.DEFAULT_TIMEOUT,
                       help="seconds to wait for the broker (default: the default of the "
                            f"bus.publish_timeout config key, {bus.DEFAULT_TIMEOUT})")
        if name == "qe":
            p.add_argument("--result", required=True,
                           choices=["passed", "failed", "needs_inspection"])
            p.add_argument("--suite", required=True, help="test suite, e.g. openqa-cloud")
            p.add_argument("--url", help="where the results are")
            p.add_argument("--channel", choices=CHANNELS, help="if the name does not say")
    return parser


def _default_agent() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except Exception:  # no passwd entry in a container: the option is then required in practice
        return "unknown"


def build_message(args: argparse.Namespace) -> FedimgMessage:
    """The message for the parsed arguments; ValueError (one line) if the identity is unclear."""
    promote = args.event == "promote"
    hint = Hint(release=args.release, subvariant=args.subvariant, arch=args.arch,
                channel="release" if promote else getattr(args, "channel", None))
    ident = identify(args.name, hint=hint)
    if ident.name != args.name:
        raise ValueError(f"{args.name!r} is an image name, not a file path")
    missing = [k for k in ("release", "subvariant", "arch") if getattr(ident, k) is None]
    if not promote and ident.channel is None:
        missing.append("channel")
    if missing:
        flags = ", ".join(f"--{m}" for m in missing)
        raise ValueError(f"cannot tell {', '.join(missing)} of {args.name!r} from the name; "
                         f"give {flags}")
    body: dict[str, Any] = {
        "name": ident.name, "release": ident.release, "subvariant": ident.subvariant,
        "arch": ident.arch, "channel": "release" if promote else ident.channel,
        "agent": args.agent, "note": args.note,
    }
    if promote:
        msg = ImagePromotedV1.from_body({**body, "official": True})
    else:
        msg = QeResultV1.from_body({**body, "result": args.result, "test_suite": args.suite,
                                    "url": args.url})
    msg.validate()
    return msg


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        msg = build_message(args)
    except Exception as e:  # ValueError, or the schema's ValidationError
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.dry_run:
        print(json.dumps({"topic": msg.topic, "body": msg.body}, indent=1))
        return 0
    try:
        bus.publish(msg, timeout=args.timeout)
    except PublishFailed as e:
        print(f"error: not published: {e}", file=sys.stderr)
        return EXIT_NOT_PUBLISHED
    print(f"published {msg.id}: {msg.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
