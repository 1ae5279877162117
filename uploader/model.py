"""The values that flow through the uploader, and the shape of a target handler.

intake:   bus message / CLI id  ->  [ImageSource]  ->  fetch + verify  ->  VerifiedImage
targets:  VerifiedImage  ->  publish_aws / publish_downloads  ->  messages (emit) + TargetOutcome

Handlers are plain functions; everything that does I/O (Koji, HTTP, boto3, subprocesses) reaches
them through `Clients`, built once at the edge (the consumer or the CLI).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from shared.config import Config
from shared.images import ImageIdentity
from shared.messages import FedimgMessage
from shared.source import Source

AGENT = "fedimg"

Emit = Callable[[FedimgMessage], None]


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """An image that a trusted source (Koji task, Koji build, compose) says exists.

    `url` was built by us from configured locations (koji.PathInfo under koji.topurl, or
    compose.base_url + images.json path); it never comes from a message.
    """

    identity: ImageIdentity
    filename: str
    url: str
    image_type: str  # Koji/productmd type: "raw-xz", "qcow2", ...
    size: int | None = None
    sha256: str | None = None
    compose_id: str | None = None
    koji_task_id: int | None = None
    koji_build_id: int | None = None
    targets: tuple[str, ...] = ()  # the configured targets that take its arch; () = all

    @property
    def origin(self) -> Source:
        """The source these ids name (precedence, label, AWS tag, message fields)."""
        return Source(compose_id=self.compose_id, koji_build_id=self.koji_build_id,
                      koji_task_id=self.koji_task_id)

    @property
    def source_label(self) -> str:
        return self.origin.label

    def body(self, **extra: Any) -> dict[str, Any]:
        """Identity + source fields every message about this image carries."""
        ident = self.identity
        return {
            "name": ident.name,
            "release": ident.release,
            "subvariant": ident.subvariant,
            "arch": ident.arch,
            "channel": ident.channel,
            "channel_inferred": ident.channel_inferred,
            **self.origin.fields(),
            "agent": AGENT,
            **extra,
        }


@dataclasses.dataclass(frozen=True)
class VerifiedImage:
    """A fetched, checksum-verified image, in the shapes its targets need (their `needs`).

    `raw_path`: the image decompressed to a sparse raw disk (None if no target reads raw);
    `file_path`: the verified download as fetched (None if no target reads the file);
    `streamed`: for each "stream" target that intake fed while downloading, the sink it fed
    (a target missing here gets `raw_path` instead).
    """

    source: ImageSource
    raw_path: Path | None = None
    file_path: Path | None = None
    streamed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def identity(self) -> ImageIdentity:
        return self.source.identity


@dataclasses.dataclass
class TargetOutcome:
    """What one target handler did for one image: destinations (regions, formats) that worked
    and those that failed. Each failure was already announced with its own message.

    `retryable`: the failed destinations a later attempt may well publish (a region past its
    deadline, throttled or down); the consumer returns the message to the queue for them.
    """

    target: str
    published: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    retryable: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class Runner(Protocol):
    """subprocess.run-compatible; tests may pass one that records or injects faults."""

    def __call__(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess: ...


@dataclasses.dataclass
class Clients:
    """The edges a handler may touch. Built once per process, passed to every handler call."""

    koji: Any = None  # koji.ClientSession (anonymous; reads only)
    http: Any = None  # requests.Session used for fetching files
    aws: Any = None  # boto3.Session
    run: Runner = subprocess.run


class TargetHandler(Protocol):
    def __call__(
        self, image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
    ) -> TargetOutcome: ...
