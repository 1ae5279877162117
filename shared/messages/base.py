"""What every fedimg message has in common: the image identity, the source, and topic building.

Topics are `fedimg.<subject>.<event>.v<N>` followed by routing words taken from the body, so a
consumer binds to exactly what it wants, e.g. `*.fedimg.image.published.v1.aws.us-east-1.#`.
The class a received message is decoded into comes from the `fedora_messaging_schema` header
(the entry-point name), not from the topic, so the routing words are free to vary.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from fedora_messaging import message

from shared.images import CHANNELS as IMAGE_CHANNELS
from shared.source import Source

SCHEMA_URL = "http://json-schema.org/draft-07/schema#"
SCHEMA_ID_BASE = "https://pagure.io/fedimg/schemas/"
CHANNELS = list(IMAGE_CHANNELS)
UNKNOWN = "unknown"

# Image identity, carried by every message about an image (see shared/images.py).
IDENTITY_PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "description": "image name without extension"},
    "release": {"type": "string", "minLength": 1, "description": "Fedora release: 41, Rawhide"},
    "subvariant": {"type": "string", "minLength": 1, "description": "productmd subvariant"},
    "arch": {"type": "string", "minLength": 1, "description": "Fedora arch: x86_64, aarch64"},
    "channel": {"enum": CHANNELS},
}
IDENTITY_REQUIRED = list(IDENTITY_PROPERTIES)

# Where the image came from: exactly the identifiers the uploader trusted, nothing else
# (shared.source.Source writes them, and says which one counts).
SOURCE_PROPERTIES: dict[str, Any] = {
    "compose_id": {"type": ["string", "null"]},
    "koji_task_id": {"type": ["integer", "null"]},
    "koji_build_id": {"type": ["integer", "null"]},
}
SOURCE_REQUIRED = list(SOURCE_PROPERTIES)

_ROUTING_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def routing_word(value: Any) -> str:
    """One AMQP routing-key word: dots and anything unusual become '_', empty becomes 'unknown'."""
    text = "" if value is None else str(value)
    return _ROUTING_UNSAFE.sub("_", text) or UNKNOWN


def object_schema(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_URL,
        "$id": f"{SCHEMA_ID_BASE}{name}.json",
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
    }


class FedimgMessage(message.Message):
    """Base class of every message fedimg publishes.

    Subclasses set `topic_base` (the versioned topic without routing words), `routing` (the body
    keys whose values become the routing words, in order) and `body_schema`.
    """

    topic_base: ClassVar[str] = "fedimg"
    routing: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[dict[str, Any]] = {}
    topic = "fedimg"

    @classmethod
    def from_body(cls, body: dict[str, Any], **kwargs: Any) -> FedimgMessage:
        """Build the message with its routing words filled in from the body."""
        words = [routing_word(body.get(key)) for key in cls.routing]
        return cls(body=body, topic=".".join([cls.topic_base, *words]), **kwargs)

    @property
    def app_name(self) -> str:
        return "fedimg"

    @property
    def app_icon(self) -> str:
        return "https://apps.fedoraproject.org/img/icons/fedimg.png"

    @property
    def agent_name(self) -> str | None:
        return self.body.get("agent")

    @property
    def usernames(self) -> list[str]:
        agent = self.agent_name
        return [agent] if agent else []

    @property
    def origin(self) -> Source:
        """Where the image this message is about came from."""
        return Source.from_body(self.body)

    @property
    def image_label(self) -> str:
        b = self.body
        return f"{b.get('name')} ({b.get('arch')}, {b.get('channel')})"

    def __str__(self) -> str:
        lines = [self.summary, ""]
        for key in sorted(self.body):
            lines.append(f"{key}: {self.body[key]}")
        return "\n".join(lines)
