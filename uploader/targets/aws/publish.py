"""publish_aws: a verified raw image -> a public AMI in every configured region, one message each.

    base region:  snapshot (EBS direct; filled during the download when intake streamed the
                  image, see stream.py) -> register_image -> available
    every region: copy_image (bounded pool, all at once) -> available -> public -> deprecation,
                  within aws.region_deadline seconds from the moment its work starts
    messages:     AwsRegionPublishedV1 as each region becomes available, UploadFailedV1 per failed
                  region, one AwsImagePublishedV1 summary at the end

A region that misses its deadline (it stopped answering, or its copy is still pending) is
announced failed (AwsTimeout, retryable) at the deadline, at most one aws.progress_interval
late, while the other regions go on. Its thread is not waited for: the factory's deadline makes
every further request to that region raise, so it ends after the attempt it is stuck in. The
outcome names the region as retryable, so the consumer returns the message to the queue and the
redelivery finds every finished region by name and redoes only the failed one.

Stateless: everything it needs to resume is found in AWS by the AMI name and tags.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from typing import Any

from shared.config import AwsConfig, Config
from shared.errors import BadInput, FedimgError, TargetFailed
from shared.images import aws_arch
from shared.messages import AwsImagePublishedV1, AwsRegionPublishedV1
from uploader.aws_clients import ClientFactory, Deadline, aws_error
from uploader.failures import announce_failure
from uploader.model import Clients, Emit, TargetOutcome, VerifiedImage
from uploader.targets.aws import ami, naming, snapshot

log = logging.getLogger(__name__)

TARGET = "aws"


def resolve_regions(factory: ClientFactory, aws: AwsConfig) -> list[str]:
    """aws.regions, with ["*"] meaning every region enabled for the account."""
    if "*" in aws.regions:
        answer = factory.ec2(aws.base_region).describe_regions(AllRegions=False)
        return sorted(r["RegionName"] for r in answer["Regions"]
                      if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in")
    return list(dict.fromkeys(aws.regions))


def prepare_base(factory: ClientFactory, image: VerifiedImage, name: str) -> dict[str, Any]:
    """Snapshot + AMI in the base region (found or made), available, not yet public."""
    source = image.source
    aws = factory.aws
    try:
        aws_arch(source.identity.arch)
    except ValueError as e:
        raise BadInput(f"{source.identity.name}: {e}") from None

    streamed = image.streamed.get(TARGET)

    def make_snapshot() -> str:
        if streamed is not None:  # filled while intake downloaded and verified the image
            snapshot_id = streamed.complete()
            snapshot.wait_completed(factory.ec2(aws.base_region), snapshot_id, aws)
            return snapshot_id
        return snapshot.ensure_snapshot(
            factory, aws.base_region, image.raw_path, name, naming.image_tags(source, name),
            source.sha256, naming.description(source),
        )

    return ami.ensure_base_image(factory, aws.base_region, source, name, make_snapshot)


def publish_region(
    factory: ClientFactory, region: str, image: VerifiedImage, name: str, base: dict[str, Any],
) -> dict[str, Any]:
    """The finished AMI in one region: copied if needed, tagged, public, deprecation set."""
    aws = factory.aws
    source = image.source
    factory.limit(region, Deadline(aws.region_deadline, f"{region} (aws.region_deadline)"))
    ec2 = factory.ec2(region)
    if region == aws.base_region:
        found = base
    else:
        found = ami.ensure_copy(factory, region, source, name, base["ImageId"], aws.base_region)
    ami.tag_snapshots(ec2, found, naming.image_tags(source, name))
    if aws.public:
        ami.make_public(ec2, found)
    if source.identity.channel == "nightly" and aws.nightly_deprecation_days > 0:
        ami.deprecate(ec2, found, aws.nightly_deprecation_days)
    return found


def publish_aws(
    image: VerifiedImage, *, config: Config, clients: Clients, emit: Emit
) -> TargetOutcome:
    """Make `image` a (public) AMI in every configured region.

    Returns the outcome per region (each failure already announced with UploadFailedV1).
    Raises TargetFailed (kind/retryable from the cause) when nothing could be published
    because the regions could not be listed or the base snapshot/AMI could not be made.
    """
    aws = config.aws
    factory = ClientFactory(clients.aws, aws)
    source = image.source
    name = naming.ami_name(source, aws.volume_type)
    outcome = TargetOutcome(TARGET)
    regions: list[str] = []
    try:
        regions = resolve_regions(factory, aws)
        base = prepare_base(factory, image, name)
    except Exception as e:
        error = aws_error(e)
        log.error("%s: AWS base step failed (%s): %s", name, error.kind, error)
        for region in regions or [aws.base_region]:
            announce_failure(emit, source, target=TARGET, destination=region, error=error,
                             context=name)
            outcome.failed.append(region)
        emit(AwsImagePublishedV1.from_body(
            source.body(regions={}, failed_regions=list(outcome.failed))))
        raise TargetFailed(f"{name}: {error}", kind=error.kind,
                           retryable=error.retryable) from e

    published: dict[str, str] = {}
    started = time.monotonic()
    logged = started
    workers = max(1, min(aws.max_parallel_copies, len(regions) or 1))

    def failed(region: str, error: FedimgError) -> None:
        log.error("%s: region %s failed (%s): %s", name, region, error.kind, error)
        announce_failure(emit, source, target=TARGET, destination=region, error=error,
                         context=f"{name} in {region}")
        outcome.failed.append(region)
        if error.retryable:
            outcome.retryable.append(region)

    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="ami-copy")
    try:
        futures = {pool.submit(publish_region, factory, r, image, name, base): r for r in regions}
        pending = set(futures)
        while pending:
            done, pending = concurrent.futures.wait(
                pending, timeout=_next_wake(factory, [futures[f] for f in pending], aws),
                return_when=concurrent.futures.FIRST_COMPLETED)
            # Messages go out from this thread, one per region, as each one finishes.
            for fut in done:
                region = futures[fut]
                try:
                    found = fut.result()
                except Exception as e:
                    failed(region, aws_error(e))
                    continue
                published[region] = found["ImageId"]
                outcome.published.append(region)
                snaps = ami.snapshot_ids(found)
                emit(AwsRegionPublishedV1.from_body(source.body(
                    region=region, ami=found["ImageId"], snapshot_id=snaps[0] if snaps else None,
                    public=aws.public, ami_name=name)))
                log.info("%s: %s is %s in %s", name, "public" if aws.public else "ready",
                         found["ImageId"], region)
            for fut in list(pending):  # past its deadline: announce now, leave its thread be
                deadline = factory.deadline(futures[fut])
                if deadline is not None and deadline.passed():
                    pending.discard(fut)
                    failed(futures[fut], deadline.error())
            now = time.monotonic()
            if pending and now - logged >= aws.progress_interval:
                logged = now
                log.info("%s: regions %d/%d done, %.0f s, waiting for %s", name,
                         len(published) + len(outcome.failed), len(regions), now - started,
                         ", ".join(sorted(futures[f] for f in pending)))
    finally:
        # Threads of regions past their deadline end on their own after the attempt in flight.
        pool.shutdown(wait=False)
    emit(AwsImagePublishedV1.from_body(source.body(
        regions=dict(sorted(published.items())), failed_regions=sorted(outcome.failed))))
    return outcome


def _next_wake(factory: ClientFactory, pending: list[str], aws: AwsConfig) -> float:
    """Seconds until the main loop must look again: the next progress line or the nearest
    deadline of a region already at work, whichever comes first."""
    wake = float(max(aws.progress_interval, 0.1))
    for region in pending:
        deadline = factory.deadline(region)
        if deadline is not None:
            wake = min(wake, deadline.remaining())
    return max(wake, 0.01)
