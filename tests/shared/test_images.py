"""Image identity: real Fedora names of every era, hints, channel rules, and properties."""

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.images import (
    CHANNELS,
    Hint,
    ImageIdentity,
    aws_arch,
    channel_from,
    identify,
    normalize_arch,
)
from tests.conftest import SAMPLES

FIELDS = [f.name for f in dataclasses.fields(ImageIdentity)]

# (input, name, release, subvariant, arch, channel, compose_date, respin, version_label,
#  image_format, cloud). Every name here is real or follows a real era's scheme exactly.
# fmt: off
TABLE = [
    # Koji, 2014: lower-case names (fedmsg_meta's fedimg fixtures, fedimg's 2014 tests)
    ("fedora-cloud-base-rawhide-20140604.x86_64", "fedora-cloud-base-rawhide-20140604.x86_64",
     "Rawhide", "Cloud_Base", "x86_64", "nightly", "20140604", None, "20140604", None, None),
    ("fedora-cloud-base-20140915-21.x86_64.raw.xz", "fedora-cloud-base-20140915-21.x86_64",
     "21", "Cloud_Base", "x86_64", None, "20140915", None, "20140915", "raw.xz", None),
    # Koji, 2015: F22 Beta test candidates carried their TC number
    ("Fedora-Cloud-Base-22_Beta_TC1-20150310.x86_64.raw.xz",
     "Fedora-Cloud-Base-22_Beta_TC1-20150310.x86_64",
     "22", "Cloud_Base", "x86_64", "candidate", "20150310", None, "20150310", "raw.xz", None),
    # Koji nightly, 2015: a bare date, Rawhide -> nightly
    ("Fedora-Cloud-Base-Rawhide-20150101.x86_64.raw.xz",
     "Fedora-Cloud-Base-Rawhide-20150101.x86_64",
     "Rawhide", "Cloud_Base", "x86_64", "nightly", "20150101", None, "20150101", "raw.xz", None),
    ("Fedora-Cloud-Base-rawhide-20150101.x86_64.qcow2", "Fedora-Cloud-Base-rawhide-20150101.x86_64",
     "Rawhide", "Cloud_Base", "x86_64", "nightly", "20150101", None, "20150101", "qcow2", None),
    # F21 GA era: the date comes before the release; nothing says which channel
    ("Fedora-Cloud-Base-20141203-21.x86_64.qcow2", "Fedora-Cloud-Base-20141203-21.x86_64",
     "21", "Cloud_Base", "x86_64", None, "20141203", None, "20141203", "qcow2", None),
    ("Fedora-Cloud-Atomic-20141203-21.x86_64.qcow2", "Fedora-Cloud-Atomic-20141203-21.x86_64",
     "21", "Atomic", "x86_64", None, "20141203", None, "20141203", "qcow2", None),
    # F22/F23 Koji image builds (the pungi koji_wrapper sample): a bare date on a numbered release
    ("Fedora-Cloud-Base-23-20160103.i386.qcow2", "Fedora-Cloud-Base-23-20160103.i386",
     "23", "Cloud_Base", "i386", None, "20160103", None, "20160103", "qcow2", None),
    ("Fedora-Cloud-Base-23-20160103.x86_64.raw.xz", "Fedora-Cloud-Base-23-20160103.x86_64",
     "23", "Cloud_Base", "x86_64", None, "20160103", None, "20160103", "raw.xz", None),
    # pungi 4, unlabelled production composes (two-week Atomic, updates cloud): candidate
    ("Fedora-Cloud-Base-24-20160710.0.x86_64", "Fedora-Cloud-Base-24-20160710.0.x86_64",
     "24", "Cloud_Base", "x86_64", "candidate", "20160710", 0, "20160710.0", None, None),
    ("Fedora-Cloud-Base-24-20160710.0.x86_64.raw.xz", "Fedora-Cloud-Base-24-20160710.0.x86_64",
     "24", "Cloud_Base", "x86_64", "candidate", "20160710", 0, "20160710.0", "raw.xz", None),
    ("Fedora-Atomic-26-20170707.1.x86_64", "Fedora-Atomic-26-20170707.1.x86_64",
     "26", "Atomic", "x86_64", "candidate", "20170707", 1, "20170707.1", None, None),
    ("Fedora-Atomic-27-20180507.0.x86_64", "Fedora-Atomic-27-20180507.0.x86_64",
     "27", "Atomic", "x86_64", "candidate", "20180507", 0, "20180507.0", None, None),
    ("Fedora-Cloud-Base-27-20180317.0.x86_64", "Fedora-Cloud-Base-27-20180317.0.x86_64",
     "27", "Cloud_Base", "x86_64", "candidate", "20180317", 0, "20180317.0", None, None),
    ("Fedora-AtomicHost-28-20180425.1.x86_64.qcow2", "Fedora-AtomicHost-28-20180425.1.x86_64",
     "28", "AtomicHost", "x86_64", "candidate", "20180425", 1, "20180425.1", "qcow2", None),
    ("Fedora-Atomic-Vagrant-26-20170707.1.x86_64.vagrant-libvirt.box",
     "Fedora-Atomic-Vagrant-26-20170707.1.x86_64",
     "26", "Atomic", "x86_64", "candidate", "20170707", 1, "20170707.1", "vagrant-libvirt.box",
     "Vagrant"),
    # pungi 4 labelled composes (RC-1.6 -> 1.6) and Beta milestones
    ("Fedora-Cloud-Base-39-1.5.x86_64.qcow2", "Fedora-Cloud-Base-39-1.5.x86_64",
     "39", "Cloud_Base", "x86_64", "candidate", None, None, "1.5", "qcow2", None),
    ("Fedora-Cloud-Base-28_Beta-1.3.x86_64.raw.xz", "Fedora-Cloud-Base-28_Beta-1.3.x86_64",
     "28", "Cloud_Base", "x86_64", "candidate", None, None, "Beta-1.3", "raw.xz", None),
    # pungi 4 nightly (".n.")
    ("Fedora-Cloud-Base-AmazonEC2-Rawhide-20240829.n.1.aarch64.raw.xz",
     "Fedora-Cloud-Base-AmazonEC2-Rawhide-20240829.n.1.aarch64",
     "Rawhide", "Cloud_Base", "aarch64", "nightly", "20240829", 1, "20240829.n.1", "raw.xz",
     "AmazonEC2"),
    ("Fedora-Cloud-Base-UEFI-UKI-Rawhide-20240829.n.1.aarch64.qcow2",
     "Fedora-Cloud-Base-UEFI-UKI-Rawhide-20240829.n.1.aarch64",
     "Rawhide", "Cloud_Base_UKI", "aarch64", "nightly", "20240829", 1, "20240829.n.1", "qcow2",
     "UEFI-UKI"),
    ("Cloud/x86_64/images/Fedora-Cloud-Base-Azure-Rawhide-20240829.n.1.x86_64.vhdfixed.xz",
     "Fedora-Cloud-Base-Azure-Rawhide-20240829.n.1.x86_64",
     "Rawhide", "Cloud_Base", "x86_64", "nightly", "20240829", 1, "20240829.n.1", "vhdfixed.xz",
     "Azure"),
    ("Fedora-Cloud-Base-Generic-Rawhide-20240829.n.1.s390x.qcow2",
     "Fedora-Cloud-Base-Generic-Rawhide-20240829.n.1.s390x",
     "Rawhide", "Cloud_Base", "s390x", "nightly", "20240829", 1, "20240829.n.1",
     "qcow2", "Generic"),
    ("Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz",
     "Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64",
     "Rawhide", "Cloud_Base", "x86_64", "nightly", "20261125", 0, "20261125.n.0", "raw.xz", None),
    ("Fedora-Cloud-Base-Generic-41-20240915.n.0.ppc64le.qcow2",
     "Fedora-Cloud-Base-Generic-41-20240915.n.0.ppc64le",
     "41", "Cloud_Base", "ppc64le", "nightly", "20240915", 0, "20240915.n.0", "qcow2", "Generic"),
    # our own weekly builds
    ("Fedora-Cloud-Base-Rawhide-weekly.20261125.x86_64.raw.xz",
     "Fedora-Cloud-Base-Rawhide-weekly.20261125.x86_64",
     "Rawhide", "Cloud_Base", "x86_64", "weekly", "20261125", None, "weekly.20261125", "raw.xz",
     None),
    ("Fedora-Cloud-Base-AmazonEC2.arm64-Rawhide-weekly.20261125",
     "Fedora-Cloud-Base-AmazonEC2.arm64-Rawhide-weekly.20261125",
     "Rawhide", "Cloud_Base", "aarch64", "weekly", "20261125", None, "weekly.20261125", None,
     "AmazonEC2"),
    # Kiwi, labelled production compose (the F43 images.json sample)
    ("Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2", "Fedora-Cloud-Base-Generic-43-1.6.x86_64",
     "43", "Cloud_Base", "x86_64", "candidate", None, None, "1.6", "qcow2", "Generic"),
    ("Fedora-Cloud-Base-Generic-43-1.6.x86_64", "Fedora-Cloud-Base-Generic-43-1.6.x86_64",
     "43", "Cloud_Base", "x86_64", "candidate", None, None, "1.6", None, "Generic"),
    ("Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64.raw.xz",
     "Fedora-Cloud-Base-AmazonEC2-43-1.6.x86_64",
     "43", "Cloud_Base", "x86_64", "candidate", None, None, "1.6", "raw.xz", "AmazonEC2"),
    ("Fedora-Cloud-Base-GCE-43-1.6.aarch64.tar.gz", "Fedora-Cloud-Base-GCE-43-1.6.aarch64",
     "43", "Cloud_Base", "aarch64", "candidate", None, None, "1.6", "tar.gz", "GCE"),
    ("Fedora-Cloud-Base-Vagrant-VirtualBox-43-1.6.x86_64.vagrant.virtualbox.box",
     "Fedora-Cloud-Base-Vagrant-VirtualBox-43-1.6.x86_64",
     "43", "Cloud_Base", "x86_64", "candidate", None, None, "1.6", "vagrant.virtualbox.box",
     "Vagrant-VirtualBox"),
    ("Fedora-Server-KVM-41-1.4.x86_64.qcow2", "Fedora-Server-KVM-41-1.4.x86_64",
     "41", "Server", "x86_64", "candidate", None, None, "1.4", "qcow2", "KVM"),
    ("Fedora-Container-Base-Generic-41-1.4.x86_64.oci.tar.xz",
     "Fedora-Container-Base-Generic-41-1.4.x86_64",
     "41", "Container_Base", "x86_64", "candidate", None, None, "1.4", "oci.tar.xz", "Generic"),
    ("Fedora-Container-Base-Generic-Minimal-43-1.6.s390x.oci.tar.xz",
     "Fedora-Container-Base-Generic-Minimal-43-1.6.s390x",
     "43", "Container_Minimal_Base", "s390x", "candidate", None, None, "1.6", "oci.tar.xz",
     "Generic"),
    # Kiwi 2024 AMI-style names: the arch sits after the cloud
    ("Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2",
     "Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2",
     "41", "Cloud_Base", "x86_64", "candidate", None, None, "Prerelease-1.2", None, "AmazonEC2"),
    ("Fedora-Cloud-Base-AmazonEC2.aarch64-41-1.4", "Fedora-Cloud-Base-AmazonEC2.aarch64-41-1.4",
     "41", "Cloud_Base", "aarch64", "candidate", None, None, "1.4", None, "AmazonEC2"),
    ("Fedora-Cloud-Base-AmazonEC2.arm64-Rawhide-20240829.n.1",
     "Fedora-Cloud-Base-AmazonEC2.arm64-Rawhide-20240829.n.1",
     "Rawhide", "Cloud_Base", "aarch64", "nightly", "20240829", 1, "20240829.n.1", None,
     "AmazonEC2"),
    # live media (Koji livemedia sample and pungi ISO names): arch before the release
    ("Fedora-i3-Live-x86_64-Rawhide-20240101.n.0.iso", "Fedora-i3-Live-x86_64-Rawhide-20240101.n.0",
     "Rawhide", "i3", "x86_64", "nightly", "20240101", 0, "20240101.n.0", "iso", None),
    ("Fedora-Workstation-Live-x86_64-41-1.4.iso", "Fedora-Workstation-Live-x86_64-41-1.4",
     "41", "Workstation", "x86_64", "candidate", None, None, "1.4", "iso", None),
    # Fedora CoreOS: streams are not fedimg channels
    ("fedora-coreos-40.20240906.3.0-aws.x86_64.vmdk.xz", "fedora-coreos-40.20240906.3.0-aws.x86_64",
     "40", "CoreOS", "x86_64", None, "20240906", 0, "40.20240906.3.0", "vmdk.xz", "aws"),
    # names with no release (fedora_image_uploader, the Koji build name); a hint supplies the rest
    ("Fedora-Cloud-Base", "Fedora-Cloud-Base",
     None, "Cloud_Base", None, None, None, None, None, None, None),
    ("Fedora-Cloud-Base-AmazonEC2", "Fedora-Cloud-Base-AmazonEC2",
     None, "Cloud_Base", None, None, None, None, None, None, "AmazonEC2"),
    ("Fedora-Cloud-AmazonEC2", "Fedora-Cloud-AmazonEC2",
     None, None, None, None, None, None, None, None, "AmazonEC2"),
]
# fmt: on


@pytest.mark.parametrize("row", TABLE, ids=[row[0] for row in TABLE])
def test_real_names(row):
    got = identify(row[0])
    values = dataclasses.astuple(got)[: len(row) - 1]
    assert values == row[1:], dict(zip(FIELDS, values, strict=False))
    assert got.channel_inferred is None  # a name alone never has its channel inferred
    assert got.known == all(v is not None for v in (row[2], row[3], row[4], row[5]))


GARBAGE = [
    "", "   ", "hello", "../../etc/passwd", "/", "Fedora", "Fedora-", "Fedora-Cloud-Base-test",
    "Fedora-Cloud-Base-dgstack-1", "Fedora-Cloud-Base-test-3", "fedora-cloud-40-1-14-x86-64",
    "Fedora-Cloud-Base-41", "Fedora-Cloud-Base-41-", "Fedora-Cloud-Base-41-banana.x86_64",
    "Fedora-Cloud-Base-41-20241399.0.x86_64",  # no such date
    "Fedora-Cloud-Base-41-20240829.n.x86_64",  # nightly without respin
    "Fedora-Cloud-Base-0-1.2.x86_64", "Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.2.x86_64",
    "Fedora-Cloud-Base-41_Beta-Prerelease-1.2.x86_64", "Fedora-41-1.2.x86_64",
    "Fedora-Cloud-Base-٤١-1.2.x86_64", "Fedora-Cloud-Base-" + "A-" * 500 + "41-1.2.x86_64",
    "Fedora-Cloud-Foo", "Fedora-Cloud-Foo.x86_64",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_is_unknown_not_guessed(text):
    got = identify(text)
    assert not got.known
    assert (got.release, got.subvariant, got.channel, got.compose_date, got.respin) == (None,) * 5
    assert "/" not in got.name


@pytest.mark.parametrize(
    "name",
    ["Fedora-Frobnicator-41-1.4.x86_64.qcow2", "Fedora-Cloud-Base-UEFI-UKI-Foo-41-1.4.x86_64"],
)
def test_unknown_product_keeps_what_the_name_does_say(name):
    got = identify(name)
    assert (got.release, got.subvariant, got.arch) == ("41", None, "x86_64")
    assert got.channel == "candidate"
    assert (got.cloud, got.version_label) == (None, "1.4")
    assert not got.known


def test_rawhide_never_reads_as_candidate():
    for name in ("Fedora-Cloud-Base-Rawhide-1.6.x86_64", "Fedora-Cloud-Base-Rawhide-20240829.0"):
        assert identify(name).channel is None


PRODUCTMD_FORMAT = {
    "vhdfixed.xz": "vhd.xz",
    "vagrant.libvirt.box": "vagrant-libvirt.box",
    "vagrant.virtualbox.box": "vagrant-virtualbox.box",
}


def _images_json(name):
    return json.loads((SAMPLES / name).read_text())["data"]["payload"]


@pytest.mark.parametrize(
    "sample, release, channel",
    [
        ("fedfind__tests-data__images.json__Fedora-43-20251023.0__Cloud.json", "43", "candidate"),
        ("fedfind__tests-data__images.json__Fedora-Rawhide-20240829.n.1__Cloud.json", "Rawhide",
         "nightly"),
    ],
)
def test_every_images_json_entry_agrees_with_productmd(sample, release, channel):
    payload = _images_json(sample)
    entries = [e for per_arch in payload["images"]["Cloud"].values() for e in per_arch]
    assert len(entries) >= 10
    compose = payload["compose"]
    assert channel_from(compose["id"], compose_type=compose["type"]) == channel
    for entry in entries:
        got = identify(entry["path"])
        assert got.known, entry["path"]
        assert (got.release, got.arch, got.subvariant, got.channel) == (
            release, entry["arch"], entry["subvariant"], channel)
        # productmd spells some formats differently; we keep what the file name says
        assert entry["path"].endswith("." + got.image_format)
        assert PRODUCTMD_FORMAT.get(got.image_format, got.image_format) == entry["format"]
        assert got.cloud is not None
        if release == "Rawhide":
            assert (got.compose_date, got.respin) == (compose["date"], compose["respin"])


def test_legacy_fedimg_bodies():
    for sample in ("fedimg-image.upload-started-from-fedmsg_meta.json",
                   "fedimg-image.publish-from-fedmsg_meta.json"):
        body = json.loads((SAMPLES / sample).read_text())["msg"]
        got = identify(body["image_name"])
        assert got.known and got.channel == "candidate" and got.arch == "x86_64"


def test_koji_task_result_with_hint():
    data = json.loads((SAMPLES / "pungi__tests-test_koji_wrapper__getTaskChildren_getTaskResult_"
                                 "12387273_Fedora-Cloud-Base-23.json").read_text())["data"]
    for result in data["getTaskResult"].values():
        images = [f for f in result["files"] if f.startswith(result["name"])]
        assert len(images) == 2
        for filename in images:
            hint = Hint(arch=result["arch"], release=result["version"],
                        koji_release=result["release"])
            got = identify(filename, hint=hint)
            assert (got.release, got.subvariant, got.arch) == ("23", "Cloud_Base", result["arch"])
            assert got.channel is None  # a bare date on a numbered release says nothing
            # the source's kind does: this was a scratch task, so a nightly by the rule
            scratch = identify(filename, hint=dataclasses.replace(hint, scratch=True))
            assert (scratch.channel, scratch.channel_inferred) == ("nightly", "scratch Koji task")
            # a production compose, told explicitly, does
            told = identify(filename, hint=dataclasses.replace(hint, compose_type="production"))
            assert told.channel == "candidate" and told.known


@pytest.mark.parametrize(
    "sample",
    [
        "fedora_image_uploader.published.v1.aws-body-from-fedora-image-uploader-messages-1.2.0-"
        "tests.json",
    ],
)
def test_fedora_image_uploader_body_needs_the_hint(sample):
    body = json.loads((SAMPLES / sample).read_text())
    assert not identify(body["image_name"]).known
    hint = Hint(subvariant=body["subvariant"], arch=body["architecture"], release=body["release"],
                compose_id=body["compose_id"])
    got = identify(body["image_name"], hint=hint)
    assert got == ImageIdentity(
        name="Fedora-Cloud-AmazonEC2", release="40", subvariant="Cloud_Base", arch="x86_64",
        channel="nightly", compose_date="20240501", respin=0, version_label=None,
        image_format=None, cloud="AmazonEC2")
    assert got.known
    assert got.routing_words() == ("nightly", "Cloud_Base", "40", "x86_64")


def test_hint_fills_only_what_is_missing():
    name = "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2"
    hint = Hint(subvariant="Server", arch="aarch64", release="42", channel="nightly",
                compose_id="Fedora-Rawhide-20240829.n.1", koji_release="20240829.n.1")
    assert identify(name, hint=hint) == identify(name)


def test_release_comes_only_from_promotion():
    name = "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2"
    assert identify(name).channel == "candidate"
    assert identify(name, hint=Hint(channel="release")).channel == "release"
    # promotion cannot make a nightly the release
    nightly = "Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz"
    assert identify(nightly, hint=Hint(channel="release")).channel == "nightly"
    # and an unknown channel becomes whatever the hint explicitly says
    bare = "Fedora-Cloud-Base-23-20160103.x86_64"
    assert identify(bare, hint=Hint(channel="release")).channel == "release"


def test_hint_koji_release_fills_version_fields():
    got = identify("Fedora-Cloud-AmazonEC2", hint=Hint(
        subvariant="Cloud_Base", arch="arm64", release="Rawhide", koji_release="weekly.20261125"))
    assert (got.release, got.arch, got.channel, got.compose_date, got.version_label) == (
        "Rawhide", "aarch64", "weekly", "20261125", "weekly.20261125")
    assert got.known


def test_hint_koji_release_reads_like_a_name():
    hint = Hint(subvariant="Cloud_Base", arch="x86_64", release="Rawhide", koji_release="20150101")
    got = identify("Fedora-Cloud-Base", hint=hint)
    named = identify("Fedora-Cloud-Base-Rawhide-20150101.x86_64")
    assert dataclasses.replace(got, name=named.name) == named


@pytest.mark.parametrize(
    "hint",
    [
        Hint(release="../../x"), Hint(release="forty"), Hint(release=True), Hint(arch="sparc"),
        Hint(arch="x86_64; rm -rf /"), Hint(subvariant="Cloud.Base#"), Hint(subvariant=""),
        Hint(channel="stable"), Hint(compose_type="weird"), Hint(compose_id="Fedora-41-x"),
    ],
)
def test_bad_hint_values_are_ignored(hint):
    got = identify("Fedora-Cloud-AmazonEC2", hint=hint)
    assert (got.release, got.arch, got.subvariant, got.channel) == (None, None, None, None)


@pytest.mark.parametrize(
    "compose_id, release_field, compose_type, expected",
    [
        ("Fedora-Rawhide-20240829.n.1", None, None, "nightly"),
        (None, "20240829.n.1", None, "nightly"),
        ("Fedora-28-20180321.n.0", None, "nightly", "nightly"),
        ("Fedora-24-20151208.n.7", None, None, "nightly"),
        (None, None, "nightly", "nightly"),
        (None, "weekly.20261125", None, "weekly"),
        (None, "weekly.20261125", "production", "weekly"),
        ("Fedora-28-20180425.0", "RC-20180425.0", "production", "candidate"),
        ("Fedora-41-20240911.0", None, None, "candidate"),
        ("Fedora-43-20251023.0", None, "production", "candidate"),
        ("Fedora-Atomic-26-20170707.1", None, None, "candidate"),
        ("Fedora-Cloud-27-20180317.0", None, None, "candidate"),
        (None, "Prerelease-1.2", None, "candidate"),
        (None, "Beta-1.3", None, "candidate"),
        (None, "1.6", None, "candidate"),
        (None, "20180317.0", None, "candidate"),
        ("Fedora-Rawhide-20180426.n.0", None, "nightly", "nightly"),
        ("Fedora-41-20240911.t.0", None, None, None),
        (None, None, "test", None),
        (None, "20160103", None, None),
        (None, None, None, None),
        ("garbage", "garbage", "garbage", None),
    ],
)
def test_channel_from(compose_id, release_field, compose_type, expected):
    assert channel_from(compose_id, release_field, compose_type) == expected


def test_channel_from_never_says_release():
    assert channel_from("Fedora-41-20241020.0", "1.4", "production") == "candidate"


def test_routing_words_and_to_dict():
    got = identify("Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2")
    assert got.routing_words() == ("candidate", "Cloud_Base", "41", "x86_64")
    assert identify("hello").routing_words() == ("unknown",) * 4
    dotted = ImageIdentity(name="x", release="4.1", subvariant="a.b", arch="", channel=None)
    assert dotted.routing_words() == ("unknown", "a_b", "4_1", "unknown")
    d = got.to_dict()
    assert list(d) == FIELDS and ImageIdentity(**d) == got
    assert json.loads(json.dumps(d)) == d


def test_arch_helpers():
    assert [normalize_arch(a) for a in ("arm64", "amd64", "aarch64", "x86_64", "s390x")] == [
        "aarch64", "x86_64", "aarch64", "x86_64", "s390x"]
    assert aws_arch("x86_64") == "x86_64"
    assert aws_arch("aarch64") == "arm64"
    assert aws_arch("arm64") == "arm64"
    for bad in ("ppc64le", "s390x", "i386", ""):
        with pytest.raises(ValueError):
            aws_arch(bad)


def test_every_channel_is_what_some_image_reads_as():
    """Each channel is reached from the names (or the promotion) that carry it, and no other."""
    candidate = "Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2"
    got = [identify("Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz").channel,
           identify("Fedora-Cloud-Base-Rawhide-weekly.20261125.x86_64.raw.xz").channel,
           identify(candidate).channel,
           identify(candidate, hint=Hint(channel="release")).channel]
    assert got == list(CHANNELS)  # from the least official to the most


# --- properties ---------------------------------------------------------------------------

NAME_CHARS = st.sampled_from(list("Fedora-CloudBase_.0123456789xn") + ["x86_64", "aarch64",
                             "Rawhide", "weekly", "-41-", ".n.", "20240829", ".raw.xz", "/"])
namey = st.lists(NAME_CHARS, max_size=30).map("".join)


@given(st.one_of(st.text(), namey))
def test_identify_never_raises(text):
    got = identify(text)
    assert isinstance(got.known, bool)
    assert got.channel in (*CHANNELS, None)
    assert all(len(w) > 0 and "." not in w for w in got.routing_words())


@given(st.text(), st.text(), st.one_of(st.none(), st.text()))
def test_channel_from_never_raises(a, b, c):
    assert channel_from(a, b, c) in (*CHANNELS, None)


KNOWN = [row[0] for row in TABLE if identify(row[0]).known]
FORMATS = ["raw.xz", "qcow2", "vhdfixed.xz", "tar.gz", "vagrant.libvirt.box", "iso", "raw"]


@given(st.sampled_from(KNOWN), st.sampled_from(FORMATS))
def test_known_names_are_stable_with_or_without_extension(filename, fmt):
    bare = identify(filename).name
    without, with_ext = identify(bare), identify(f"{bare}.{fmt}")
    assert dataclasses.replace(with_ext, image_format=None) == without
    assert with_ext.image_format == fmt
    assert identify(f"some/dir/{bare}.{fmt}") == with_ext


@given(st.text())
def test_normalize_arch_idempotent(arch):
    assert normalize_arch(normalize_arch(arch)) == normalize_arch(arch)


# Names assembled from the parts of each era read back as those parts.
dates = st.dates().filter(lambda d: d.year >= 2000).map(lambda d: d.strftime("%Y%m%d"))
releases = st.one_of(st.integers(1, 199).map(str), st.just("Rawhide"))
arches = st.sampled_from(["x86_64", "aarch64", "ppc64le", "s390x", "arm64"])
clouds = st.sampled_from(["", "-Generic", "-AmazonEC2", "-Azure", "-GCE", "-Vagrant-libvirt"])
respins = st.integers(0, 30)


@given(releases, dates, respins, arches, clouds, st.booleans())
def test_built_nightly_names(release, date, respin, arch, cloud, kiwi):
    core = f"Fedora-Cloud-Base{cloud}"
    name = (f"{core}.{arch}-{release}-{date}.n.{respin}" if kiwi and cloud
            else f"{core}-{release}-{date}.n.{respin}.{arch}")
    got = identify(name)
    assert (got.release, got.subvariant, got.arch, got.channel) == (
        release, "Cloud_Base", normalize_arch(arch), "nightly")
    assert (got.compose_date, got.respin, got.cloud) == (date, respin, cloud[1:] or None)


@given(st.integers(1, 199), st.integers(1, 20), st.integers(0, 20), arches, clouds,
       st.sampled_from(["", "Prerelease-"]))
def test_built_labelled_names(release, major, minor, arch, cloud, pre):
    got = identify(f"Fedora-Cloud-Base{cloud}-{release}-{pre}{major}.{minor}.{arch}.qcow2")
    assert (got.release, got.channel, got.version_label, got.compose_date) == (
        str(release), "candidate", f"{pre}{major}.{minor}", None)
    assert got.known


maybe_text = st.one_of(st.none(), st.text(max_size=40), st.integers(), namey)


@given(st.one_of(st.text(), namey), st.builds(
    Hint, subvariant=maybe_text, arch=maybe_text, release=maybe_text, channel=maybe_text,
    compose_id=maybe_text, compose_type=maybe_text, koji_release=maybe_text))
def test_identify_with_any_hint_never_raises(text, hint):
    got = identify(text, hint=hint)
    assert got.channel in (*CHANNELS, None)
    assert got.arch is None or "." not in got.arch


@pytest.mark.parametrize("compose_id, expected", [
    ("Fedora-40-20240501.n.0", ("40", "20240501.n.0")),
    ("Fedora-Rawhide-20240829.n.1", ("Rawhide", "20240829.n.1")),
    ("Fedora-Atomic-27-20180507.0", ("27", "20180507.0")),
    ("Fedora-41-20240911.0", ("41", "20240911.0")),
    ("Fedora-40-20240501", None),
    ("../Fedora-40-20240501.n.0", None),
    ("", None),
])
def test_compose_version_splits_release_and_version(compose_id, expected):
    from shared.images import compose_version

    assert compose_version(compose_id) == expected


@pytest.mark.parametrize("name, hint, expected", [
    # a bare date says nothing; the kind of source does
    ("Fedora-Cloud-Base-23-20160103.x86_64.raw.xz", Hint(scratch=True),
     ("nightly", "scratch Koji task")),
    ("Fedora-Cloud-Base-23-20151030.x86_64.raw.xz", Hint(scratch=False),
     ("candidate", "Koji build")),
    ("Fedora-Cloud-Base-42-20250101.t.0.x86_64.raw.xz",
     Hint(compose_id="Fedora-42-20250101.t.0", compose_type="test"), ("nightly", "test compose")),
    # what the name or the source's own words say is never overridden by the rule
    ("Fedora-Cloud-Base-Rawhide-20261125.n.0.x86_64.raw.xz", Hint(scratch=False),
     ("nightly", None)),
    ("Fedora-Cloud-Base-23-20160103.x86_64.raw.xz",
     Hint(scratch=True, compose_id="Fedora-23-20160103.0"), ("candidate", None)),
    # nothing about the source: nobody can tell
    ("Fedora-Cloud-Base-23-20160103.x86_64.raw.xz", Hint(), (None, None)),
])
def test_channel_rule_when_the_name_says_none(name, hint, expected):
    got = identify(name, hint=hint)
    assert (got.channel, got.channel_inferred) == expected
