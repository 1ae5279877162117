"""publish_containers: one arch of a compose's container image -> every configured registry.

Per registry, for the image of arch A of compose C (tags: see tags.py):

1. A's image goes to `<repo>:<compose tag>-A`, unless that tag already names its digest;
2. the other arches of C (from C's images.json: same subvariant, arches this target takes) are
   looked up under their own arch tags; if one is missing, this is not the last arch: done;
3. otherwise the manifest list of every arch is built (same bytes whoever builds it) and each
   of C's list tags is pointed at it, if it does not name it already and may move (tags.py).

So the arches may arrive in any order, in one message or many, on competing consumers, and any
of them redelivered: the last to find all arches present assembles the list, and a redelivery
finds everything in place and pushes nothing. One message per registry where something was
pushed (ContainerPublishedV1); one failure message per registry that failed (RegistryError,
retryable), while the others are done; the failure is then raised as TargetFailed so the
consumer returns the message to the queue and a redelivery retries what failed.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path

from shared.config import Config
from shared.errors import BadInput, ConfigError, RegistryError, TargetFailed
from shared.messages import ContainerPublishedV1
from uploader.failures import announce_failure
from uploader.intake.compose import compose_images
from uploader.model import Clients, Emit, ImageSource, TargetOutcome, VerifiedImage
from uploader.targets.containers import manifest_list
from uploader.targets.containers.settings import SECTION, RegistryConfig, containers_config
from uploader.targets.containers.skopeo import LocalImage, Skopeo
from uploader.targets.containers.tags import TagPlan, compose_of, may_move, plan_tags

log = logging.getLogger(__name__)

TARGET = "containers"


@dataclasses.dataclass
class RegistryResult:
    """What one registry holds for the image after this run, and what this run changed."""

    reference: str
    digest: str
    pushed: bool = False
    manifest_list: manifest_list.ManifestList | None = None
    manifests: dict[str, str] = dataclasses.field(default_factory=dict)  # arch -> digest
    tags: list[str] = dataclasses.field(default_factory=list)
    moved: list[str] = dataclasses.field(default_factory=list)
    kept: dict[str, str] = dataclasses.field(default_factory=dict)
    pending: list[str] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.pushed or bool(self.moved)

    def body(self, source: ImageSource, registry: str, repository: str) -> dict:
        listed = None
        if self.manifest_list is not None:
            listed = {"digest": self.manifest_list.digest, "manifests": self.manifests}
        return source.body(registry=registry, repository=repository, reference=self.reference,
                           digest=self.digest, manifest_list=listed, tags=self.tags,
                           kept_tags=self.kept, pending_arches=self.pending)


def compose_arches(source: ImageSource, *, config: Config, clients: Clients) -> list[str]:
    """Every arch of the image's compose that this target pushes for the image's subvariant."""
    from uploader.targets import get_target  # the registry imports this module's package

    takes = get_target(TARGET).takes
    siblings = compose_images(str(source.compose_id), config=config, clients=clients)
    arches = {s.identity.arch for s in siblings
              if s.identity.subvariant == source.identity.subvariant
              and takes.refusal(s.image_type, s.identity.arch) is None}
    return sorted(arches | {source.identity.arch})


def push_registry(skopeo: Skopeo, registry: RegistryConfig, repository: str, plan: TagPlan,
                  arch: str, arches: list[str], local: LocalImage,
                  list_dir: Path) -> RegistryResult:
    """Steps 1-3 of the module docstring for one registry; RegistryError if it fails."""
    repo = f"{registry.name}/{repository}"
    result = RegistryResult(reference=f"{repo}:{plan.arch_tag(arch)}", digest=local.digest)
    there = skopeo.inspect_raw(registry, result.reference)
    if there is None or manifest_list.digest_of(there) != local.digest:
        skopeo.push(registry, local.layout, local.ref, result.reference)
        check = skopeo.inspect_raw(registry, result.reference)
        if check is None or manifest_list.digest_of(check) != local.digest:
            raise RegistryError(f"{registry.name}: {result.reference} does not name "
                                f"{local.digest} after the push")
        result.pushed = True
        log.info("pushed %s (%s)", result.reference, local.digest)

    manifests = {arch: local.manifest}
    for other in arches:
        if other != arch:
            raw = skopeo.inspect_raw(registry, f"{repo}:{plan.arch_tag(other)}")
            if raw is None:
                result.pending.append(other)
            else:
                manifests[other] = raw
    if result.pending:
        log.info("%s: the manifest list of %s waits for %s", repo, plan.compose_id,
                 ", ".join(result.pending))
        return result

    result.manifest_list = listed = manifest_list.build(plan.compose_id, manifests)
    result.manifests = {a: manifest_list.digest_of(m) for a, m in sorted(manifests.items())}
    manifest_list.write_layout(list_dir, listed)
    for tag in plan.list_tags:
        ref = f"{repo}:{tag}"
        now = skopeo.inspect_raw(registry, ref)
        if now is not None and manifest_list.digest_of(now) == listed.digest:
            result.tags.append(tag)
            continue
        holder = compose_of(now) if now is not None else None
        if now is not None and not may_move(plan.compose_id, holder):
            log.info("%s stays at %s: newer than %s", ref, holder, plan.compose_id)
            result.kept[tag] = str(holder)
            continue
        skopeo.push(registry, list_dir, manifest_list.REF, ref, index_only=True)
        result.tags.append(tag)
        result.moved.append(tag)
        log.info("%s -> manifest list %s of %s (%s)", ref, listed.digest, plan.compose_id,
                 ", ".join(result.manifests))
    return result


def publish_containers(
    image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
) -> TargetOutcome:
    """Push one arch of a container image to every configured registry (module docstring)."""
    settings = containers_config(config)
    source = image.source
    ident = source.identity
    outcome = TargetOutcome(TARGET)
    repository = settings.repository(ident.subvariant)
    if repository is None:
        log.info("%s: subvariant %s has no repository (containers.repositories): not pushed",
                 ident.name, ident.subvariant)
        return outcome
    if not settings.registries:
        raise ConfigError(config.path or "<config>", f"{SECTION}.registries",
                          "no registry configured")
    if source.compose_id is None or image.file_path is None:
        raise BadInput(f"{ident.name}: only the archives of a compose are pushed to registries")
    plan = plan_tags(source.compose_id, settings.latest_release)
    arches = compose_arches(source, config=config, clients=clients)

    base = Path(config.uploader.work_dir)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="containers-", dir=base))
    failures: dict[str, RegistryError] = {}
    try:
        (work / "tmp").mkdir()
        skopeo = Skopeo(clients.run, timeout=settings.timeout, retries=settings.retries,
                        tmpdir=work / "tmp")
        local = skopeo.to_layout(image.file_path, work / "image")
        manifest_list.check_platform(ident.arch, local.config, ident.name)
        for n, registry in enumerate(settings.registries):
            try:
                result = push_registry(skopeo, registry, repository, plan, ident.arch, arches,
                                       local, work / f"list-{n}")
            except RegistryError as exc:
                log.error("%s: %s", ident.name, exc)
                announce_failure(emit, source, target=TARGET, destination=registry.name,
                                 error=exc)
                outcome.failed.append(registry.name)
                failures[registry.name] = exc
                continue
            outcome.published.append(registry.name)
            if result.changed:
                emit(ContainerPublishedV1.from_body(result.body(source, registry.name,
                                                                repository)))
            else:
                log.info("%s: %s already holds everything of %s; nothing pushed", ident.name,
                         registry.name, plan.compose_id)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise TargetFailed(f"{ident.name}: {len(failures)} of {len(settings.registries)} "
                           f"registries failed: {', '.join(failures)}", kind="registry",
                           retryable=any(e.retryable for e in failures.values()))
    return outcome

