"""Publishing a fedimg message on the bus: the one way every command does it.

The broker comes from fedora-messaging's own configuration (FEDORA_MESSAGING_CONF, default
/etc/fedora-messaging/config.toml). Every publish waits for the broker's confirmation at most
`timeout` seconds (the `bus.publish_timeout` config key): without that bound, fedora-messaging
keeps reconnecting to a dead broker forever. Any failure to deliver becomes PublishFailed with
one line naming the cause. A message that breaks its own schema is a bug in fedimg, not a bus
failure: its jsonschema ValidationError propagates and nothing is sent.
"""

from __future__ import annotations

from fedora_messaging import api
from fedora_messaging import exceptions as fm_exceptions
from fedora_messaging.message import Message

from shared.config import BusConfig
from shared.errors import PublishFailed

__all__ = ["DEFAULT_TIMEOUT", "publish"]

DEFAULT_TIMEOUT = BusConfig().publish_timeout


def publish(message: Message, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Validate `message` and publish it, broker-confirmed within `timeout` seconds.

    Raises PublishFailed ("<cause type>: <cause text on one line>") if the broker is unreachable
    or slow, or refuses the message.
    """
    message.validate()
    try:
        api.publish(message, timeout=timeout)
    except (fm_exceptions.BaseException, OSError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise PublishFailed(f"{type(exc).__name__}: {text}") from exc
