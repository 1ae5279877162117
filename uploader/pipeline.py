"""The uploader's one path, shared by the consumer and fedimg-upload.

    for each ImageSource:  fetch + verify  ->  ImageAcceptedV1  ->  every target handler at once
                           (a "stream" target's sink is fed during the fetch; its handler
                           finishes the job once the download is verified)
    failures of intake (or a handler that crashed) -> UploadFailedV1 with target "intake" / name

Each image is independent: one bad file does not stop the others. The targets of one image run
concurrently (a thread each), because where one process serves both, the AWS upload is network
bound and the download conversions are CPU bound: together they take as long as the slower one. The
caller decides what the reports mean for the broker (consumer) or the exit code (CLI).
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor

from shared import http as shared_http
from shared.config import Config
from shared.errors import FedimgError, TargetFailed, as_error
from shared.koji import anonymous_session
from shared.messages import ImageAcceptedV1
from uploader.failures import announce_failure
from uploader.intake.fetch import fetched
from uploader.model import Clients, Emit, ImageSource, TargetHandler, TargetOutcome
from uploader.targets import get_target

log = logging.getLogger(__name__)

USER_AGENT = "fedimg-uploader"


def make_clients(config: Config, targets: list[str] | tuple[str, ...]) -> Clients:
    """Clients for a process: anonymous Koji session, an HTTP session, boto3 if AWS is used."""
    read_timeout = float(config.uploader.fetch_timeout)
    http = shared_http.session(
        USER_AGENT,
        timeout=(min(10.0, read_timeout), read_timeout),
        retries=config.uploader.fetch_retries,
        # image files live on the hub's own file server (topurl), signed by the same CA
        verify=config.koji.serverca or None,
        same_origin_redirects=True,  # a file must come from where the configuration says
    )
    aws = None
    s3_downloads = "downloads" in targets and config.downloads.destination.startswith("s3://")
    if "aws" in targets or s3_downloads:
        import boto3  # only processes that publish to AWS (EC2 or an S3 download mirror) need it

        aws = boto3.Session()
    return Clients(koji=anonymous_session(config.koji), http=http, aws=aws)


@dataclasses.dataclass
class ImageReport:
    """What happened to one image."""

    source: ImageSource
    accepted: bool = False
    outcomes: list[TargetOutcome] = dataclasses.field(default_factory=list)
    errors: list[FedimgError] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.accepted and not self.errors and all(o.ok for o in self.outcomes)

    @property
    def retryable(self) -> bool:
        """A later attempt may do better (only transient errors, e.g. a 503 while fetching, or
        a destination a target reported as retryable)."""
        return bool(self.retry_reasons())

    def retry_reasons(self) -> list[str]:
        """One line per transient error and per retryable failed destination."""
        reasons = [str(e) for e in self.errors if e.retryable]
        reasons += [f"{o.target}: {d} failed" for o in self.outcomes for d in o.retryable]
        return reasons

    def summary(self) -> str:
        name = self.source.identity.name
        if not self.accepted:
            return f"{name}: not accepted: {'; '.join(str(e) for e in self.errors)}"
        parts = []
        for o in self.outcomes:
            parts.append(f"{o.target}: {len(o.published)} published, {len(o.failed)} failed"
                         + (f" ({', '.join(o.failed)})" if o.failed else ""))
        parts += [f"error: {e}" for e in self.errors]
        return f"{name}: accepted; " + ("; ".join(parts) or "no targets")


def process_image(
    source: ImageSource,
    *,
    config: Config,
    clients: Clients,
    emit: Emit,
    handlers: dict[str, TargetHandler],
    announce_retryable: bool = True,
) -> ImageReport:
    """Fetch/verify one image, announce it, run every target; never raises FedimgError.

    `announce_retryable=False` keeps quiet about transient failures that a redelivery will
    retry (the consumer announces them on the last delivery only).
    """
    report = ImageReport(source)
    if source.targets:  # intake left out the targets that cannot take this arch
        handlers = {n: h for n, h in handlers.items() if n in source.targets}
    try:
        needs = {get_target(n).needs for n in handlers}
        streams = {n: get_target(n).stream_opener() for n in handlers
                   if get_target(n).needs == "stream"}
        with fetched(source, config=config, clients=clients, raw=not handlers or "raw" in needs,
                     keep_file="file" in needs, streams=streams) as image:
            verified = image.source
            emit(ImageAcceptedV1.from_body(verified.body(
                targets=list(handlers), source_url=verified.url, size=verified.size,
                sha256=verified.sha256,
            )))
            report.accepted = True
            log.info("accepted %s from %s for %s", verified.identity.name,
                     verified.source_label, ", ".join(handlers) or "no target")
            with ThreadPoolExecutor(max_workers=max(1, len(handlers)),
                                    thread_name_prefix="target") as pool:
                # _run_target never raises; list.append in it is atomic under the GIL
                for name, handler in handlers.items():
                    pool.submit(_run_target, name, handler, image, report, config=config,
                                clients=clients, emit=emit,
                                announce_retryable=announce_retryable)
    except FedimgError as exc:
        log.error("%s from %s: %s", source.filename, source.source_label, exc)
        report.errors.append(exc)
        if not report.accepted and (announce_retryable or not exc.retryable):
            announce_failure(emit, source, target="intake", destination=source.filename,
                             error=exc)
    return report


def _run_target(name: str, handler: TargetHandler, image, report: ImageReport, *,  # noqa: ANN001
                config: Config, clients: Clients, emit: Emit, announce_retryable: bool) -> None:
    try:
        outcome = handler(image, config=config, clients=clients, emit=emit)
    except TargetFailed as exc:  # the handler already published its failure messages
        log.error("target %s failed for %s: %s", name, image.identity.name, exc)
        report.errors.append(exc)
        return
    except FedimgError as exc:
        log.error("target %s failed for %s: %s", name, image.identity.name, exc)
        report.errors.append(exc)
        if announce_retryable or not exc.retryable:
            announce_failure(emit, image.source, target=name, destination=name, error=exc)
        return
    except Exception as exc:  # a bug in a handler must not take the service down
        log.exception("target %s crashed for %s", name, image.identity.name)
        err = as_error(exc)
        report.errors.append(err)
        announce_failure(emit, image.source, target=name, destination=name, error=err,
                         context=f"target {name} crashed")
        return
    report.outcomes.append(outcome)
    log.info("target %s for %s: %d published, %d failed", name, image.identity.name,
             len(outcome.published), len(outcome.failed))


def process_images(
    sources: list[ImageSource],
    *,
    config: Config,
    clients: Clients,
    emit: Emit,
    handlers: dict[str, TargetHandler],
    announce_retryable: bool = True,
) -> list[ImageReport]:
    return [
        process_image(s, config=config, clients=clients, emit=emit, handlers=handlers,
                      announce_retryable=announce_retryable)
        for s in sources
    ]
