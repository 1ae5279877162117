"""fedimg-openstack-cleanup: keep the newest nightly Glance images of each family, delete the rest.

    fedimg-openstack-cleanup [--config FILE] [--dry-run] [--keep N]

In every cloud of openstack.clouds, the images fedimg made (they carry fedimg_source_sha256)
with fedimg_channel=nightly are grouped by family (release, subvariant, arch); the newest
openstack.nightly_retention of each family stay, older ones are deleted. Candidates and releases
are never touched. One line per deletion ("would delete" with --dry-run, which changes
nothing). Exit 0 if everything listed was deleted, 1 if something failed, 2 on a bad config.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any

from shared.cli import cleanup_command
from shared.config import EXIT_CONFIG_ERROR
from shared.errors import ConfigError, one_line
from uploader.targets.openstack import glance
from uploader.targets.openstack.config import OpenStackConfig, settings

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Removal:
    cloud: str
    image_id: str
    name: str
    created: str
    family: str
    error: str | None = None

    def line(self, dry_run: bool) -> str:
        if not self.image_id:
            return f"FAILED to list images in {self.cloud}: {self.error}"
        verb = "would delete" if dry_run else ("FAILED to delete" if self.error else "deleted")
        text = (f"{verb} Glance image {self.image_id} in {self.cloud} ({self.name}, created "
                f"{self.created}, family {self.family})")
        return text + (f": {self.error}" if self.error else "")


def family(image: Any) -> str:
    """release/subvariant/arch of one of our images, from the properties fedimg set."""
    props = image.properties or {}
    return "/".join(str(props.get(k, "?")) for k in ("fedimg_release", "fedimg_subvariant")) \
        + f"/{image.architecture or '?'}"


def expired(images: list[Any], cloud: str, keep: int) -> list[Removal]:
    """The nightly images past the newest `keep` of their family (nothing is changed here)."""
    families: dict[str, list[Any]] = {}
    for image in images:
        props = image.properties or {}
        if glance.SHA256_PROPERTY in props and props.get("fedimg_channel") == "nightly":
            families.setdefault(family(image), []).append(image)
    found = []
    for fam, members in sorted(families.items()):
        members.sort(key=lambda i: (i.created_at or "", i.name or "", i.id), reverse=True)
        found += [Removal(cloud, i.id, i.name or "", i.created_at or "?", fam)
                  for i in members[keep:]]
    return found


def cleanup_cloud(cloud: str, cfg: OpenStackConfig, keep: int, dry_run: bool) -> list[Removal]:
    """List (and unless dry_run delete) the expired nightlies of one cloud."""
    conn = glance.connect(cloud, cfg)
    images = list(conn.image.images(visibility="all", tag="nightly"))
    found = expired(images, cloud, keep)
    if not dry_run:
        for removal in found:
            try:
                conn.image.delete_image(removal.image_id, ignore_missing=True)
            except Exception as exc:  # one failed deletion does not stop the others
                removal.error = one_line(exc)
    return found


def cleanup(cfg: OpenStackConfig, *, keep: int | None = None, dry_run: bool = False,
            say: Callable[[str], None] = print) -> list[Removal]:
    """Apply the retention in every configured cloud; every removal (or failure) as a line."""
    keep = cfg.nightly_retention if keep is None else keep
    results: list[Removal] = []
    for cloud in cfg.clouds:
        try:
            results += cleanup_cloud(cloud, cfg, keep, dry_run)
        except Exception as exc:  # listing failed: say so, go on with the other clouds
            error = glance.cloud_error(exc, cloud)
            results.append(Removal(cloud, "", "", "", "", error=str(error)))
    for removal in results:
        say(removal.line(dry_run))
    done = sum(1 for r in results if r.image_id and not r.error)
    say(f"{'would delete' if dry_run else 'deleted'} {done} nightly image(s), keeping the "
        f"newest {keep} per family, in {len(cfg.clouds)} cloud(s)")
    return results


def main(argv: list[str] | None = None) -> int:
    args, config = cleanup_command(
        "fedimg-openstack-cleanup",
        "Delete nightly Glance images past openstack.nightly_retention per family (release, "
        "subvariant, arch) in every configured cloud.",
        argv, flag="--keep", metavar="N", overrides="openstack.nightly_retention")
    try:
        cfg = settings(config)
    except ConfigError as exc:
        print(f"error: config: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    results = cleanup(cfg, keep=args.keep, dry_run=args.dry_run)
    return 1 if any(r.error for r in results) else 0

if __name__ == "__main__":
    sys.exit(main())
