"""Where an image came from: a compose, a Koji build or a Koji task, and how each is written.

A compose is the most specific source (it names the release engineering event), then a Koji
build (a tagged, signed artifact), then the Koji task that made the files. `Source` applies that
precedence once, for every place that names a source:

- `label`, for people: "compose Fedora-41-20241027.0", "Koji build 2612345", "Koji task 123456";
- `tag`, the value of the `fedimg:source` tag on AWS resources ("compose:<id>",
  "koji-build:<id>", "koji-task:<id>"); tags are how later runs find earlier work, so this
  spelling must never change;
- `fields()`, the three source keys every message about an image carries (all three, None
  where unknown), in the order the message bodies have always had them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["Source"]

_UNKNOWN_LABEL = "an unknown source"
_UNKNOWN_TAG = "unknown"


@dataclasses.dataclass(frozen=True)
class Source:
    """The identifiers the uploader trusted for one image; any of them may be None."""

    compose_id: str | None = None
    koji_build_id: int | None = None
    koji_task_id: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Source:
        """The source named by a message body (its compose_id / koji_*_id keys)."""
        return cls(compose_id=body.get("compose_id"), koji_build_id=body.get("koji_build_id"),
                   koji_task_id=body.get("koji_task_id"))

    def _strongest(self) -> tuple[str, str, object] | None:
        """(label word, tag word, id) of the source that counts, by precedence."""
        if self.compose_id:
            return "compose", "compose", self.compose_id
        if self.koji_build_id is not None:
            return "Koji build", "koji-build", self.koji_build_id
        if self.koji_task_id is not None:
            return "Koji task", "koji-task", self.koji_task_id
        return None

    @property
    def label(self) -> str:
        """'compose X' / 'Koji build N' / 'Koji task N', for logs and summaries."""
        strongest = self._strongest()
        return f"{strongest[0]} {strongest[2]}" if strongest else _UNKNOWN_LABEL

    @property
    def tag(self) -> str:
        """'compose:X' / 'koji-build:N' / 'koji-task:N': the AWS `fedimg:source` tag value."""
        strongest = self._strongest()
        return f"{strongest[1]}:{strongest[2]}" if strongest else _UNKNOWN_TAG

    def fields(self) -> dict[str, Any]:
        """The source keys of a message body, in their published order."""
        return {
            "compose_id": self.compose_id,
            "koji_task_id": self.koji_task_id,
            "koji_build_id": self.koji_build_id,
        }
