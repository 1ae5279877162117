"""fedimg-upload: run the uploader's handlers once, without the bus (manual initiation)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading

from shared import bus
from shared.cli import add_config_argument, config_or_exit, setup_logging
from shared.errors import ConfigError, FedimgError, PublishFailed, TargetUnavailable
from shared.messages import FedimgMessage
from uploader.intake.route import Request, find_images
from uploader.model import ImageSource
from uploader.pipeline import make_clients, process_images
from uploader.targets import check_config, get_handlers

log = logging.getLogger("fedimg-upload")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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


def dry_run_record(source: ImageSource, targets: list[str]) -> dict:
    """The --dry-run --json line of one image."""
    ident = source.identity
    return {
        "name": ident.name, "arch": ident.arch, "release": ident.release,
        "subvariant": ident.subvariant, "channel": ident.channel, "source_url": source.url,
        "sha256": source.sha256, "size": source.size,
        "targets": list(source.targets or targets), "channel_inferred": ident.channel_inferred,
    }


def _request(args: argparse.Namespace) -> Request:
    if args.koji_task is not None:
        return Request("task", args.koji_task)
    if args.koji_build is not None:
        return Request("build", args.koji_build)
    return Request("compose", args.compose)


class _Emitter:
    """Publishes through fedora-messaging (FEDORA_MESSAGING_CONF) or only logs; counts failures."""

    def __init__(self, publish: bool, timeout: float) -> None:
        self.publish = publish
        self.timeout = timeout
        self.failed = 0
        self._lock = threading.Lock()  # targets publish from their own threads

    def __call__(self, message: FedimgMessage) -> None:
        if not self.publish:
            log.info("not published (--no-messages): %s", message.summary)
            return
        try:
            bus.publish(message, timeout=self.timeout)
        except PublishFailed as exc:
            with self._lock:
                self.failed += 1
            log.error("could not publish %s: %s", message.topic, exc)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json and not args.dry_run:
        print("fedimg-upload: --json needs --dry-run", file=sys.stderr)
        return EXIT_USAGE
    config = config_or_exit(args)
    setup_logging()
    targets = list(config.uploader.targets)
    request = _request(args)
    try:
        check_config(config, targets)
        handlers = {} if args.dry_run else get_handlers(targets)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TargetUnavailable as exc:
        print(f"error: config: uploader.targets: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        clients = make_clients(config, [] if args.dry_run else targets)
        sources = find_images(request, config=config, clients=clients)
    except FedimgError as exc:
        print(f"fedimg-upload: {request}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.dry_run:
        out = sys.stdout if args.json else sys.stderr
        for source in sources:
            if args.json:
                print(json.dumps(dry_run_record(source, targets), sort_keys=True), flush=True)
            else:
                print(f"would process {source.filename} from {source.url} for "
                      f"{', '.join(source.targets or targets) or 'no target'}", file=out)
        print(f"fedimg-upload: {request}: {len(sources)} image(s) selected (dry run)",
              file=sys.stderr)
        return EXIT_OK if sources else EXIT_FAILED
    if not sources:
        print(f"fedimg-upload: {request}: no wanted images", file=sys.stderr)
        return EXIT_FAILED
    emit = _Emitter(publish=not args.no_messages, timeout=config.bus.publish_timeout)
    reports = process_images(sources, config=config, clients=clients, emit=emit,
                             handlers=handlers)
    for report in reports:
        print(("ok     " if report.ok else "FAILED ") + report.summary())
    ok = all(r.ok for r in reports) and emit.failed == 0
    print(f"fedimg-upload: {request}: {sum(r.ok for r in reports)}/{len(reports)} image(s) "
          f"done{'' if emit.failed == 0 else f', {emit.failed} message(s) not published'}")
    return EXIT_OK if ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
