"""The target contract: what a cloud or destination declares so the uploader can serve it.

A target is one subpackage under uploader/targets/ plus one `Target` in the registry
(uploader/targets/__init__.py). Everything intake, the pipeline, the consumer and the CLI need to
know about it is here, so adding a cloud edits nothing else:

- `takes`: which images it wants (image type, arch, the cloud word of the name), decided before
  anything is fetched;
- `needs`: the shape of the verified image its handler reads ("raw": a sparse raw disk made by
  intake; "file": the verified download as fetched, e.g. a qcow2 for Glance or an archive;
  "stream": the raw disk's non-zero blocks while the download is still running, handed to the
  sink that `stream` opens; where an image cannot be streamed, the target gets "raw" instead);
- `stream`: for needs="stream", "module:function" opening the target's block sink,
  `(ImageSource, raw size, *, config, clients) -> sink | None` (None: nothing to send, e.g. the
  result exists already). A sink has `block(index, data)` (a non-zero 512 KiB block; it may
  wait, which slows the download: backpressure), `zero()` (a zero block skipped) and
  `abort(why)` (the download failed verification: drop everything). Intake puts the sink in
  `VerifiedImage.streamed[name]` only once the whole download is verified; the handler
  finishes the job from it (uploader/intake/stream.py);
- `publish`: its handler, "module:function", imported only by processes that use the target;
  a plain function `VerifiedImage -> TargetOutcome` that emits its own messages;
- `section`: the config section it owns (the uploader passes the whole Config; a target reads
  only its own section and the shared ones); `settings`, "module:function", reads and checks a
  section the target owns (`Config -> settings`, ConfigError when unusable); it is called when a
  process starts, so a typo stops the service instead of failing every image later;
- `messages`: the topics of its own success schemas (failures use the shared failure message,
  whose `target` field names it);
- `cleanup`: the console script that applies its retention policy, if it has one.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, Literal

from shared.config import Config
from shared.errors import TargetUnavailable
from uploader.model import TargetHandler

Needs = Literal["raw", "file", "stream"]


@dataclasses.dataclass(frozen=True)
class Takes:
    """The images a target can take; `None` means any arch, any cloud.

    `image_types` in order of preference, when a tuple (see `preference`).

    `clouds` names the cloud word of the image's name (ImageIdentity.cloud: "AmazonEC2",
    "Generic", "UEFI-UKI", ...; None for names that carry none). One compose ships an image per
    cloud with the same subvariant (Cloud_Base), so this, not the subvariant, is what tells the
    EC2 image from the generic qcow2 that belongs in OpenStack.
    """

    image_types: tuple[str, ...] | frozenset[str]  # a tuple: in order of preference
    arches: frozenset[str] | None = None
    clouds: frozenset[str | None] | None = None

    def preference(self, image_type: str | None) -> int:
        """Rank of a type it takes (0 is the best): when one image comes as several files
        (a Koji build's .raw.xz and .qcow2 of one name), the target takes only the best."""
        order = self.image_types if isinstance(self.image_types, tuple) \
            else tuple(sorted(self.image_types))
        return order.index(image_type) if image_type in order else len(order)

    def refusal(self, image_type: str | None, arch: str | None,
                cloud: str | None = None) -> str | None:
        """Why an image of this type, arch and cloud is not taken, or None if it is."""
        if image_type not in self.image_types:
            return f"does not take {image_type or 'unknown'} images"
        if self.arches is not None and arch not in self.arches:
            return f"does not take {arch} images"
        if self.clouds is not None and cloud not in self.clouds:
            return f"does not take {cloud} images" if cloud else \
                "does not take images whose name says no cloud"
        return None


@dataclasses.dataclass(frozen=True)
class Target:
    """One registered target (see the module docstring for each field's meaning)."""

    name: str
    publish: str
    takes: Takes
    section: str
    needs: Needs = "raw"
    messages: tuple[str, ...] = ()
    cleanup: str | None = None
    settings: str | None = None
    stream: str | None = None

    def handler(self) -> TargetHandler:
        """Import and return the handler; TargetUnavailable naming what is missing."""
        module_name, _, attr = self.publish.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise TargetUnavailable(
                f"target {self.name!r} is not available: cannot import {module_name} ({exc})"
            ) from exc
        handler = getattr(module, attr, None)
        if not callable(handler):
            raise TargetUnavailable(
                f"target {self.name!r} is not available: {self.publish} is not defined"
            )
        return handler

    def stream_opener(self) -> Callable[..., Any]:
        """The function that opens this target's block sink (needs="stream")."""
        if self.stream is None:
            raise TargetUnavailable(f"target {self.name!r} streams but names no opener")
        module_name, _, attr = self.stream.partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def check_settings(self, config: Config) -> None:
        """ConfigError if the section this target owns cannot be used."""
        if self.settings is not None:
            module_name, _, attr = self.settings.partition(":")
            getattr(importlib.import_module(module_name), attr)(config)
