"""shared.errors: one tree that every fedimg failure belongs to, each class saying what it means
for the failure message (kind) and for the broker (Drop or Nack)."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil

import pytest
from fedora_messaging.exceptions import Drop, Nack

from shared import errors
from shared.errors import FedimgError, broker_exception
from shared.messages import ERROR_KINDS

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "uploader", "reporter", "trigger")


def _tree() -> list[type[FedimgError]]:
    found, todo = [], [FedimgError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: c.__name__)


def _instance(cls: type[FedimgError]) -> FedimgError:
    if cls is errors.ConfigError:
        return cls("fedimg.toml", "aws.regions", "expected a list")
    return cls("what went wrong")


@pytest.mark.parametrize("cls", _tree(), ids=lambda c: c.__name__)
def test_every_class_has_a_message_kind_and_a_broker_meaning(cls):
    error = _instance(cls)
    assert error.kind in ERROR_KINDS
    assert isinstance(error.retryable, bool)
    assert type(broker_exception(error)) is (Nack if error.retryable else Drop)
    assert cls.__doc__, f"{cls.__name__} says what it means"


@pytest.mark.parametrize("name, kind, retryable", [
    ("Unwanted", "source", False),
    ("BadInput", "source", False),
    ("UnusableIdentity", "source", False),
    ("TransientError", "source", True),
    ("VerificationFailed", "verification", False),
    ("AwsError", "aws", False),
    ("AwsTransient", "aws", True),
    ("AwsTimeout", "timeout", True),
    ("CloudError", "cloud", False),
    ("CloudTransient", "cloud", True),
    ("CloudTimeout", "timeout", True),
    ("ConversionFailed", "conversion", False),
    ("ConversionNoSpace", "conversion", True),
    ("ConversionTimeout", "timeout", True),
    ("DestinationError", "destination", True),
    ("RegistryError", "registry", True),
    ("ConfigError", "internal", False),
    ("TargetUnavailable", "internal", False),
    ("HistoryError", "internal", False),
    ("HubUnreachable", "internal", True),
    ("LoginFailed", "internal", False),
    ("PublishFailed", "internal", True),
])
def test_what_each_failure_means(name, kind, retryable):
    error = _instance(getattr(errors, name))
    assert (error.kind, error.retryable) == (kind, retryable)


def test_families():
    assert issubclass(errors.Unwanted, errors.InputError)
    assert issubclass(errors.UnusableIdentity, errors.BadInput)
    assert issubclass(errors.ConfigError, errors.SetupError)
    assert issubclass(errors.TargetUnavailable, errors.SetupError)
    for name in ("TargetFailed", "AwsError", "CloudError", "ConversionFailed",
                 "DestinationError", "RegistryError"):
        assert issubclass(getattr(errors, name), errors.TargetError), name
    for name in ("HistoryError", "RunError", "Unreadable"):
        assert issubclass(getattr(errors, name), errors.ReportError), name
    for name in ("HubUnreachable", "LoginFailed", "PermissionMissing", "JobError"):
        assert issubclass(getattr(errors, name), errors.TriggerError), name
    # a history row is a value: code reading saved state catches it as one
    assert issubclass(errors.Unreadable, ValueError)


def test_only_unwanted_is_quiet():
    assert [c.__name__ for c in _tree() if c.quiet] == ["Unwanted"]


def test_config_error_is_one_line_naming_file_and_key():
    error = errors.ConfigError("/etc/fedimg/fedimg.toml", "aws.regions", "expected a list")
    assert str(error) == "/etc/fedimg/fedimg.toml: aws.regions: expected a list"
    assert str(errors.ConfigError("x.toml", None, "file not found")) == "x.toml: file not found"


def test_target_failed_carries_its_causes_meaning():
    error = errors.TargetFailed("ami: throttled", kind="aws", retryable=True)
    assert (error.kind, error.retryable) == ("aws", True)
    assert isinstance(broker_exception(error), Nack)
    assert (errors.TargetFailed("x").kind, errors.TargetFailed("x").retryable) == ("internal",
                                                                                 False)


def test_an_error_outside_the_tree_is_nacked_and_reported_as_internal():
    bug = KeyError("region")
    assert isinstance(broker_exception(bug), Nack)  # bounded by the delivery limit
    error = errors.as_error(bug)
    assert (error.kind, error.retryable) == ("internal", False)
    assert str(error) == "KeyError: 'region'" and error.__cause__ is bug
    known = errors.BadInput("no")
    assert errors.as_error(known) is known


def test_one_line_keeps_the_first_line_and_the_type():
    assert errors.one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert errors.one_line(ValueError("x" * 900), limit=20) == "ValueError: " + "x" * 8
    assert errors.one_line(RuntimeError()) == "RuntimeError: "


def test_every_exception_class_of_fedimg_is_in_the_tree():
    """No module defines a public exception of its own outside shared.errors' tree."""
    outside = []
    for package in PACKAGES:
        for info in pkgutil.walk_packages([str(REPO_ROOT / package)], prefix=f"{package}."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException)
                        and obj.__module__ == module.__name__ and not name.startswith("_")
                        and not issubclass(obj, FedimgError)):
                    outside.append(f"{module.__name__}.{name}")
    assert outside == []


def test_shown_keeps_a_value_from_outside_to_one_short_line():
    assert errors.shown("image") == "'image'"
    long = errors.shown("x" * 10_000)
    assert len(long) < 100 and long.startswith("'xxx") and "..." in long
    assert errors.shown(2**70) == str(2**70)
    assert errors.shown(10**5000) == f"<an integer of {(10**5000).bit_length()} bits>"
    assert "\n" not in errors.shown("a\nb\x00\u202e") and "\\x00" in errors.shown("\x00")
    assert len(errors.shown([["y" * 500] * 100] * 100)) < 400
