"""trigger.plan (pure: job + date -> hub call) and the date window of the idempotency query."""

from __future__ import annotations

import datetime

import pytest

from shared.config import parse_config
from shared.errors import JobError
from shared.images import channel_from, identify
from tests.trigger.conftest import LIVEMEDIA, MANUAL, NIGHTLY, WEEKLY
from trigger.koji_builds import search_from
from trigger.plan import Overrides, plan, respin_of

DAY = datetime.date(2026, 11, 25)


def job(**raw):
    return parse_config({"trigger": {"jobs": [raw]}}).trigger.jobs[0]


@pytest.mark.parametrize("raw, respin, release, channel", [
    (WEEKLY, 0, "weekly.20261125", "weekly"),
    (NIGHTLY, 0, "20261125.n.0", "nightly"),
    (NIGHTLY, 12, "20261125.n.12", "nightly"),
    (MANUAL, 3, "20261125.3", "candidate"),
])
def test_release_names_read_back_as_their_channel(raw, respin, release, channel):
    request = plan(job(**raw), DAY, respin=respin)
    assert request.release == release and request.channel == channel
    # the uploader and reporter read the channel back from what Koji names the image
    assert channel_from(release_field=request.release) == channel
    image = f"{request.name}-{request.version}-{request.release}.x86_64.raw.xz"
    assert identify(image).channel == channel


def test_respin_is_parsed_only_from_the_jobs_own_shape_and_day():
    nightly, manual, weekly = job(**NIGHTLY), job(**MANUAL), job(**WEEKLY)
    assert respin_of(nightly, DAY, "20261125.n.4") == 4
    assert respin_of(nightly, DAY, "20261124.n.4") is None
    assert respin_of(nightly, DAY, "20261125.4") is None
    assert respin_of(nightly, DAY, "20261125.n.4.1") is None
    assert respin_of(manual, DAY, "20261125.7") == 7
    assert respin_of(manual, DAY, "20261125x7") is None  # the dot is literal
    assert respin_of(weekly, DAY, "weekly.20261125") is None


def test_any_override_makes_a_candidate_build():
    request = plan(job(**WEEKLY), DAY, overrides=Overrides(repos=("https://r/$arch/",)))
    assert request.channel == "candidate" and request.release == "weekly.20261125"
    assert request.hub_opts["repo"] == ["https://r/$arch/"]
    assert plan(job(**WEEKLY), DAY, overrides=Overrides(scratch=False)).channel == "weekly"


def test_arches_are_canonicalised_like_kojis_cli():
    request = plan(job(**{**WEEKLY, "arches": ["x86_64", "armv7hl", "i686"]}), DAY)
    assert request.hub_args[2] == ["x86_64", "armhfp", "i386"]


def test_appliance_takes_one_arch_and_one_format():
    raw = {**LIVEMEDIA, "method": "appliance", "formats": ["qcow2"]}
    request = plan(job(**raw), DAY)
    assert request.hub_method == "buildImage"
    assert request.hub_args == ("Fedora-Workstation-Live", "Rawhide", "x86_64", "f44",
                                "fedora-live-workstation.ks", "appliance")
    assert request.hub_opts["format"] == "qcow2"
    with pytest.raises(JobError, match="exactly one arch"):
        plan(job(**{**raw, "arches": ["x86_64", "aarch64"]}), DAY)
    with pytest.raises(JobError, match="one format"):
        plan(job(**{**raw, "formats": ["qcow2", "raw"]}), DAY)


def test_image_jobs_need_an_install_tree():
    with pytest.raises(JobError, match="install_tree is required"):
        plan(job(**{k: v for k, v in WEEKLY.items() if k != "install_tree"}), DAY)


def test_task_search_starts_at_the_build_date_or_today_if_later():
    midnight = datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC).timestamp()
    assert search_from(DAY, today=datetime.date(2026, 11, 27)) == midnight
    # a build "for" a future date can only have been created from today on
    assert search_from(datetime.date(2026, 12, 31), today=DAY) == midnight
