"""Which tags a compose's container images get, and when a tag may move to them.

The rule (docs/containers.md), for compose `Fedora-<R>-<date>[.n].<respin>`:

- `<r>-<date>[.n].<respin>` (r = R in lower case: "43-20251023.0", "rawhide-20240829.n.1"):
  the compose tag, naming this compose's manifest list only;
- `<r>-<date>[.n].<respin>-<arch>`: each arch's image, pushed first, never moved;
- `<r>` ("43", or "rawhide" for Rawhide): the newest compose of the release;
- `latest`: the newest compose of `containers.latest_release` (Rawhide never).

A tag moves only forward. Every manifest list fedimg pushes carries its compose id in the
annotation COMPOSE_ANNOTATION; before a tag is moved, the list it names now is read back, and the
tag moves only if that list's compose is older than ours (by release, then date, then respin) or
is ours. A tag naming something without that annotation (pushed by another tool) counts as older.
"""

from __future__ import annotations

import dataclasses
import json
import re

from shared.errors import BadInput

COMPOSE_ANNOTATION = "org.fedoraproject.compose.id"
LATEST = "latest"

_COMPOSE = re.compile(
    r"Fedora(?:-[A-Za-z][A-Za-z0-9_]*)*-(?P<rel>[1-9][0-9]{0,2}|Rawhide)"
    r"-(?P<date>[0-9]{8})(?P<kind>\.[nt])?\.(?P<respin>[0-9]{1,4})")
_RAWHIDE_RANK = 10_000  # above every numbered release; only ever compared with Rawhide itself


def compose_key(compose_id: str) -> tuple[int, str, int] | None:
    """(release rank, date, respin) of a Fedora compose id, for ordering; None if not one."""
    m = _COMPOSE.fullmatch(compose_id) if isinstance(compose_id, str) else None
    if m is None:
        return None
    rank = _RAWHIDE_RANK if m["rel"] == "Rawhide" else int(m["rel"])
    return rank, m["date"], int(m["respin"])


@dataclasses.dataclass(frozen=True)
class TagPlan:
    """The tags of one compose (see the module docstring)."""

    compose_id: str
    compose_tag: str
    moving: tuple[str, ...]

    def arch_tag(self, arch: str) -> str:
        return f"{self.compose_tag}-{arch}"

    @property
    def list_tags(self) -> tuple[str, ...]:
        """Every tag that should name the manifest list, the compose tag first."""
        return (self.compose_tag, *self.moving)


def plan_tags(compose_id: str, latest_release: str) -> TagPlan:
    """The tags of a compose; BadInput if the id is not a Fedora compose id."""
    m = _COMPOSE.fullmatch(compose_id)
    if m is None:
        raise BadInput(f"compose {compose_id!r}: not a Fedora compose id, cannot name its tags")
    release = m["rel"].lower()
    compose_tag = f"{release}-{m['date']}{m['kind'] or ''}.{m['respin']}"
    moving = [release]
    if latest_release and release == latest_release:
        moving.append(LATEST)
    return TagPlan(compose_id=compose_id, compose_tag=compose_tag, moving=tuple(moving))


def compose_of(manifest: bytes) -> str | None:
    """The compose id a manifest list fedimg pushed names; None for anything else."""
    try:
        doc = json.loads(manifest)
    except ValueError:
        return None
    annotations = doc.get("annotations") if isinstance(doc, dict) else None
    value = annotations.get(COMPOSE_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else None


def may_move(ours: str, current: str | None) -> bool:
    """Whether a tag naming compose `current` (None: unknown) may move to compose `ours`."""
    if current is None or current == ours:
        return True
    now, new = compose_key(current), compose_key(ours)
    if now is None:
        return True  # not a compose id we can order: counts as older (module docstring)
    return new is not None and new > now
