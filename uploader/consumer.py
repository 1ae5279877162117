"""The uploader service: `fedora-messaging consume --callback=uploader.consumer:Uploader`.

fedora-messaging instantiates `Uploader` once per process and calls it per message in a worker
thread. Outcomes map to broker semantics; for a failure the error's class decides
(shared.errors.broker_exception), so this module never works it out itself:

- success, or nothing wanted in a valid message whose images are all done -> ack;
- unwanted (other topics, states, methods, owners, formats) or malformed -> Drop, one log line;
- transient (Koji down, HTTP 5xx, timeouts) -> wait, then Nack (requeue), bounded: RabbitMQ
  quorum queues count deliveries in the `x-delivery-count` header; once a message has been
  delivered `uploader.max_deliveries` times it is dropped with an error line and failure
  messages for its images. The broker enforces the same bound with `x-delivery-limit` (see
  deploy/fedora-messaging/), so even a consumer killed mid-message cannot loop forever. No state
  is kept here: the count travels with the message. Messages are published on the bus with
  shared.bus (broker-confirmed within `bus.publish_timeout`).
- anything unexpected is logged with its traceback and treated as transient (bounded), so a
  bug never stops the service and never loses a message silently.

One queue per target: each consumer process runs only the targets in its fedora-messaging
`[consumer_config] targets` (default: fedimg's `[uploader] targets`), so a slow AWS upload never
holds up the downloads queue. fedimg's own config file comes from `[consumer_config]
fedimg_config`, else $FEDIMG_CONFIG, else /etc/fedimg/fedimg.toml. Competing consumers on one
queue are safe: prefetch 1, and every target is idempotent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import crochet
from fedora_messaging import config as fm_config
from fedora_messaging.exceptions import Drop, Nack

from shared import bus
from shared.config import Config, load_config
from shared.errors import ConfigError, FedimgError, broker_exception, one_line
from shared.messages import FedimgMessage
from uploader.intake.route import find_images, request_from_message
from uploader.model import Emit
from uploader.pipeline import make_clients, process_images
from uploader.targets import TARGETS, check_config, get_handlers

log = logging.getLogger(__name__)

DELIVERY_COUNT_HEADER = "x-delivery-count"
MAX_RETRY_DELAY = 300


def consumer_targets(config: Config, consumer_config: dict[str, Any]) -> list[str]:
    """The targets this process runs: consumer_config `targets` if set, else [uploader]."""
    targets = consumer_config.get("targets", config.uploader.targets)
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise ConfigError("fedora-messaging [consumer_config]", "targets",
                          f"expected a list of target names, got {targets!r}")
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ConfigError("fedora-messaging [consumer_config]", "targets",
                          f"unknown target {unknown[0]!r} (known: {', '.join(sorted(TARGETS))})")
    return targets


def delivery_attempt(message: Any) -> int:
    """1 for a first delivery; n+1 after n returns (quorum queues' x-delivery-count)."""
    headers = getattr(message, "_headers", None) or {}
    count = headers.get(DELIVERY_COUNT_HEADER)
    return int(count) + 1 if isinstance(count, int) and count >= 0 else 1


class Uploader:
    """fedora-messaging callback class (see the module docstring)."""

    def __init__(self, config: Config | None = None, emit: Emit | None = None) -> None:
        """`emit` defaults to publishing on the bus (bus.publish_timeout); tests pass their own."""
        consumer_config = dict(fm_config.conf.get("consumer_config") or {})
        try:
            self.config = config or load_config(consumer_config.get("fedimg_config"))
            self.targets = consumer_targets(self.config, consumer_config)
            check_config(self.config, self.targets)
            self.handlers = get_handlers(self.targets)
        except FedimgError as exc:
            log.error("uploader cannot start: %s", exc)
            raise
        self.clients = make_clients(self.config, self.targets)
        if emit is None:
            # `fedora-messaging consume` runs the Twisted reactor itself; without this, the first
            # api.publish from a callback thread makes crochet start another one, which fails
            # (a ReactorAlreadyRunning traceback per process) before falling back to the real one
            crochet.no_setup()
            emit = self._publish
        self.emit = emit
        self.max_deliveries = max(1, self.config.uploader.max_deliveries)
        self.retry_delay = max(0, self.config.uploader.retry_delay)
        log.info("uploader ready: targets %s, Koji %s, composes %s",
                 ", ".join(self.targets) or "none", self.config.koji.hub,
                 self.config.compose.base_url)

    def _publish(self, message: FedimgMessage) -> None:
        bus.publish(message, timeout=self.config.bus.publish_timeout)

    def __call__(self, message: Any) -> None:
        attempt = delivery_attempt(message)
        try:
            self._handle(message, attempt)
        except (Drop, Nack):
            raise
        except Exception as exc:
            log.exception("message %s (%s): unexpected error", message.id, message.topic)
            self._fail(message, attempt, exc)

    def _handle(self, message: Any, attempt: int) -> None:
        last = attempt >= self.max_deliveries
        try:
            request = request_from_message(message.topic, message.body,
                                           owners=self.config.koji.owners)
            sources = find_images(request, config=self.config, clients=self.clients)
        except FedimgError as exc:
            self._fail(message, attempt, exc)
        # Images whose targets are all run by other consumers (their own queues) are theirs:
        # fetching them here would only fail (e.g. a container archive has no raw disk).
        theirs = [s for s in sources if s.targets and not set(s.targets) & set(self.targets)]
        for source in theirs:
            log.info("message %s: %s is for %s, not for this consumer's %s", message.id,
                     source.filename, ", ".join(source.targets), ", ".join(self.targets))
        sources = [s for s in sources if s not in theirs]
        if not sources:
            log.info("message %s: %s has no wanted images", message.id, request)
            return
        log.info("message %s: %s: %d wanted image(s): %s", message.id, request, len(sources),
                 ", ".join(s.filename for s in sources))
        reports = process_images(sources, config=self.config, clients=self.clients,
                                 emit=self.emit, handlers=self.handlers,
                                 announce_retryable=last)
        for report in reports:
            log.info("message %s: %s", message.id, report.summary())
        retry = [r for r in reports if r.retryable]
        if retry:
            self._retry_or_give_up(
                message, attempt, "; ".join(x for r in retry for x in r.retry_reasons()))

    def _fail(self, message: Any, attempt: int, exc: Exception) -> None:
        """Drop or Nack (bounded) as the error's class says; always raises."""
        outcome = broker_exception(exc)
        if isinstance(outcome, Nack):
            self._retry_or_give_up(message, attempt, one_line(exc))
        if getattr(exc, "quiet", False):
            log.info("ignoring message %s (%s): %s", message.id, message.topic, exc)
        else:
            log.warning("dropping message %s (%s): %s", message.id, message.topic, exc)
        raise outcome from exc

    def _retry_or_give_up(self, message: Any, attempt: int, reason: str) -> None:
        if attempt >= self.max_deliveries:
            log.error("giving up on message %s (%s) after %d deliveries: %s", message.id,
                      message.topic, attempt, reason)
            raise Drop()
        if attempt == 1 and DELIVERY_COUNT_HEADER not in (message._headers or {}):
            log.debug("message %s has no %s header yet (first delivery, or not a quorum "
                      "queue: only quorum queues bound redelivery)", message.id,
                      DELIVERY_COUNT_HEADER)
        delay = min(self.retry_delay * 2 ** (attempt - 1), MAX_RETRY_DELAY)
        log.warning("message %s (%s): %s; returning it to the queue in %d s (delivery %d of "
                    "at most %d)", message.id, message.topic, reason, delay, attempt,
                    self.max_deliveries)
        time.sleep(delay)
        raise Nack()
