"""The containers target's success message: one arch of a container image is in one registry.

Public API like every fedimg message (see shared.messages.events): change a body incompatibly
only with a new class and a new version in the topic.
"""

from __future__ import annotations

from shared.messages.base import FedimgMessage
from shared.messages.events import _EXAMPLE_IMAGE, IMAGE_ROUTING, _image_schema

_DIGEST = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
_ARCHES = {"type": "array", "items": {"type": "string", "minLength": 1}}
_MANIFESTS = {"type": "object", "minProperties": 1, "additionalProperties": _DIGEST,
              "description": "arch -> digest of that arch's image, as the list names it"}

_EXAMPLE_X86_64 = "sha256:60caeb1c917f47dcfea6280effe120704aba0e635e3a76c140f8a1a0bdc024d3"
_EXAMPLE_AARCH64 = "sha256:836b89a45893aca059a28d0a8f96dbbde873dfad3a72cc82ffd7186481d6120d"


class ContainerPublishedV1(FedimgMessage):
    """One arch of a container image is in one registry (one message per arch and registry),
    and, once every arch of its compose is there, the multi-arch manifest list and its tags."""

    topic_base = "fedimg.image.published.v1.container"
    routing = ("registry", *IMAGE_ROUTING)
    body_schema = _image_schema(
        "image.published.v1.container",
        "An arch of a container image is in a registry; the manifest list once all arches are",
        {
            "registry": {"type": "string", "minLength": 1,
                         "description": "registry host and namespace, e.g. quay.io/fedora"},
            "repository": {"type": "string", "minLength": 1},
            "reference": {"type": "string", "minLength": 1,
                          "description": "the arch image's own tag, never moved"},
            "digest": _DIGEST,
            "manifest_list": {"anyOf": [{"type": "null"}, {
                "type": "object",
                "properties": {"digest": _DIGEST, "manifests": _MANIFESTS},
                "required": ["digest", "manifests"],
            }]},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1},
                     "description": "tags naming the manifest list after this push"},
            "kept_tags": {"type": "object", "additionalProperties": {"type": "string"},
                          "description": "tags left alone: tag -> the newer compose they name"},
            "pending_arches": _ARCHES,
        },
        ["registry", "repository", "reference", "digest", "manifest_list", "tags",
         "pending_arches"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "name": "Fedora-Container-Base-Generic-43-1.6.x86_64",
        "release": "43",
        "subvariant": "Container_Base",
        "channel": "candidate",
        "compose_id": "Fedora-43-20251023.0",
        "koji_task_id": None,
        "registry": "quay.io/fedora",
        "repository": "fedora",
        "reference": "quay.io/fedora/fedora:43-20251023.0-x86_64",
        "digest": _EXAMPLE_X86_64,
        "manifest_list": {
            "digest": "sha256:f27d6203d7efe53dec89f8653cf4f8e981ccf49d4ce84238698e0aa0daf5221f",
            "manifests": {"aarch64": _EXAMPLE_AARCH64, "x86_64": _EXAMPLE_X86_64},
        },
        "tags": ["43", "43-20251023.0", "latest"],
        "kept_tags": {},
        "pending_arches": [],
    }

    @property
    def summary(self) -> str:
        b = self.body
        where = f"{b['registry']}/{b['repository']}"
        text = f"fedimg pushed {self.image_label} to {where} as {b['digest'][:19]}"
        if b.get("manifest_list"):
            tags = ", ".join(b["tags"]) or "no tag moved"
            text += f"; manifest list {b['manifest_list']['digest'][:19]}: {tags}"
        elif b["pending_arches"]:
            text += f"; the manifest list waits for {', '.join(b['pending_arches'])}"
        return text
