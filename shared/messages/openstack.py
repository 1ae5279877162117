"""The openstack target's success message: the image is active in one cloud's Glance.

Public API like every fedimg message (see shared.messages.events): change a body incompatibly
only with a new class and a new version in the topic.
"""

from __future__ import annotations

from shared.messages.base import FedimgMessage
from shared.messages.events import _EXAMPLE_IMAGE, _SHA256, IMAGE_ROUTING, _image_schema


class OpenStackImagePublishedV1(FedimgMessage):
    """The image is active in one OpenStack cloud's Glance (one message per cloud)."""

    topic_base = "fedimg.image.published.v1.openstack"
    routing = ("cloud", *IMAGE_ROUTING)
    body_schema = _image_schema(
        "image.published.v1.openstack",
        "A Glance image of the image is active in one OpenStack cloud",
        {
            "cloud": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      "description": "the cloud's name in fedimg's clouds.yaml"},
            "image_id": {"type": "string", "pattern": "^[0-9a-f-]{36}$",
                         "description": "the Glance image id"},
            "image_name": {"type": "string", "minLength": 1},
            "visibility": {"enum": ["public", "community", "shared", "private"]},
            "disk_format": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "sha256": _SHA256,
        },
        ["cloud", "image_id", "image_name", "visibility", "sha256"],
    )
    example = {
        **_EXAMPLE_IMAGE,
        "name": "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64",
        "compose_id": "Fedora-Rawhide-20261125.n.0",
        "koji_task_id": None,
        "cloud": "fedora-infra",
        "image_id": "9c1e2a47-3f0b-4d6e-8a51-2b7f0c9d4e13",
        "image_name": "Fedora-Cloud-Base-Generic-Rawhide-20261125.n.0.x86_64",
        "visibility": "public",
        "disk_format": "qcow2",
        "size": 583335936,
        "sha256": "846574c8a97cd2d8dc1f231062d73107cc85cbbbda56335e264a46e3a6c8ab2f",
    }

    @property
    def summary(self) -> str:
        b = self.body
        return (f"fedimg published {self.image_label} as Glance image {b['image_id']} "
                f"in {b['cloud']}")
