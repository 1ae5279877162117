"""The shared path: accept, run targets, announce failures; each image on its own."""

from __future__ import annotations

from shared.errors import TargetFailed, TransientError
from uploader.intake import build_images
from uploader.model import TargetOutcome
from uploader.pipeline import process_images

NAME = "Fedora-Cloud-Base-Rawhide-20261125.n.0"


def _build(koji_hub, raw_xz_image, arches=("x86_64",)):
    return koji_hub.add_image_build(
        arches=list(arches), files={a: {f"{NAME}.{a}.raw.xz": raw_xz_image.path} for a in arches})


class Recorder:
    """An Emit that validates each message against its schema, as publishing would."""

    def __init__(self):
        self.messages = []

    def __call__(self, message):
        message.validate()
        self.messages.append(message)

    def topics(self):
        return [m.topic for m in self.messages]


def test_targets_get_the_sparse_raw_and_accepted_precedes_them(koji_hub, config, clients,
                                                               raw_xz_image):
    sources = build_images(_build(koji_hub, raw_xz_image, ("x86_64", "aarch64")), config=config,
                           session=clients.koji)
    emit = Recorder()
    seen = []

    def downloads(image, *, config, clients, emit):
        seen.append((image.identity.arch, image.raw_path.stat().st_size, len(emit.messages)))
        return TargetOutcome("downloads", published=["qcow2"])

    reports = process_images(sources, config=config, clients=clients, emit=emit,
                             handlers={"downloads": downloads})
    assert [r.ok for r in reports] == [True, True]
    assert seen == [("aarch64", raw_xz_image.raw.size, 1), ("x86_64", raw_xz_image.raw.size, 2)]
    assert emit.topics() == [
        "fedimg.image.accepted.v1.nightly.Cloud_Base.Rawhide.aarch64",
        "fedimg.image.accepted.v1.nightly.Cloud_Base.Rawhide.x86_64"]
    body = emit.messages[1].body
    assert body["targets"] == ["downloads"] and body["koji_build_id"] == sources[1].koji_build_id
    assert (body["sha256"], body["size"]) == (raw_xz_image.sha256, raw_xz_image.size)


def test_target_failures_are_reported_and_never_escape(koji_hub, config, clients,
                                                       raw_xz_image):
    (source,) = build_images(_build(koji_hub, raw_xz_image), config=config, session=clients.koji)

    def crashes(image, *, config, clients, emit):
        raise KeyError("bug")

    def announced(image, *, config, clients, emit):
        raise TargetFailed("aws failed in 2 regions", kind="aws", retryable=True)

    def flaky(image, *, config, clients, emit):
        raise TransientError("destination busy")

    def partial(image, *, config, clients, emit):
        return TargetOutcome("downloads", published=["qcow2"], failed=["raw.tar.xz"])

    emit = Recorder()
    (report,) = process_images([source], config=config, clients=clients, emit=emit,
                               handlers={"aws": crashes, "downloads": partial})
    assert report.accepted and not report.ok and not report.retryable
    failed = [m for m in emit.messages if m.topic.startswith("fedimg.image.failed.v1")]
    assert len(failed) == 1  # the crash; the partial outcome announced its own failures
    assert failed[0].body["target"] == "aws" and failed[0].body["error_kind"] == "internal"
    assert "KeyError" in failed[0].body["error"]
    assert "downloads: 1 published, 1 failed (raw.tar.xz)" in report.summary()

    emit = Recorder()
    (report,) = process_images([source], config=config, clients=clients, emit=emit,
                               handlers={"aws": announced, "downloads": flaky},
                               announce_retryable=False)
    assert report.retryable  # the consumer will Nack
    assert [m.topic.split(".")[2] for m in emit.messages] == ["accepted"]  # nothing announced

    def region_late(image, *, config, clients, emit):  # a region past its deadline
        return TargetOutcome("aws", published=["us-east-1"], failed=["eu-west-1"],
                             retryable=["eu-west-1"])

    (report,) = process_images([source], config=config, clients=clients, emit=Recorder(),
                               handlers={"aws": region_late, "downloads": partial})
    assert report.retryable and not report.ok  # Nack: the redelivery may finish eu-west-1
    assert report.retry_reasons() == ["aws: eu-west-1 failed"]


def test_intake_failure_is_announced_once_and_other_images_go_on(koji_hub, config, clients,
                                                                 raw_xz_image):
    bid = _build(koji_hub, raw_xz_image, ("x86_64", "aarch64"))
    sources = build_images(bid, config=config, session=clients.koji)
    koji_hub.corrupt(sources[0].url, "flip")  # aarch64
    emit = Recorder()
    reports = process_images(sources, config=config, clients=clients, emit=emit, handlers={})
    assert [r.ok for r in reports] == [False, True]
    assert emit.topics() == [
        "fedimg.image.failed.v1.intake." + NAME.replace(".", "_") + "_aarch64_raw_xz"
        ".nightly.Cloud_Base.Rawhide.aarch64",
        "fedimg.image.accepted.v1.nightly.Cloud_Base.Rawhide.x86_64"]
    assert emit.messages[0].body["error_kind"] == "verification"
    assert emit.messages[0].body["destination"] == f"{NAME}.aarch64.raw.xz"

    koji_hub.down = True  # transient: quiet unless this is the last try
    emit = Recorder()
    reports = process_images(sources[1:], config=config, clients=clients, emit=emit,
                             handlers={}, announce_retryable=False)
    assert reports[0].retryable and emit.messages == []


def test_targets_of_one_image_run_at_the_same_time(koji_hub, config, clients, raw_xz_image):
    """AWS (network bound) and downloads (CPU bound) overlap when one process runs both: each
    handler waits at a barrier that only opens when both are inside at once."""
    import threading

    (source,) = build_images(_build(koji_hub, raw_xz_image), config=config, session=clients.koji)
    both_inside = threading.Barrier(2, timeout=20)

    def handler(name):
        def run(image, *, config, clients, emit):
            both_inside.wait()  # BrokenBarrierError (-> a crash report) if run one after another
            return TargetOutcome(name, published=[name])
        return run

    emit = Recorder()
    (report,) = process_images([source], config=config, clients=clients, emit=emit,
                               handlers={"aws": handler("aws"), "downloads": handler("downloads")})
    assert report.ok, report.summary()
    assert sorted(o.target for o in report.outcomes) == ["aws", "downloads"]
