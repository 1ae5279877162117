import copy
import importlib.metadata
import pathlib

import jsonschema
import pytest
from fedora_messaging import message as fm_message
from jsonschema.exceptions import ValidationError

from shared.messages import MESSAGES, FedimgMessage, UploadFailedV1, routing_word
from shared.messages import doc as messages_doc

CLASSES = list(MESSAGES.items())
IDS = [name for name, _ in CLASSES]


@pytest.mark.parametrize("schema_name, cls", CLASSES, ids=IDS)
def test_example_body_validates_and_topic_carries_routing_words(schema_name, cls):
    msg = cls.from_body(copy.deepcopy(cls.example))
    msg.validate()
    assert msg.topic.startswith(cls.topic_base + ".")
    words = msg.topic[len(cls.topic_base) + 1 :].split(".")
    assert words == [routing_word(cls.example[k]) for k in cls.routing]
    assert schema_name.startswith("fedimg.")


@pytest.mark.parametrize("schema_name, cls", CLASSES, ids=IDS)
def test_every_required_field_is_enforced(schema_name, cls):
    required = cls.body_schema["required"]
    assert required, "a schema without required fields accepts anything"
    for field in required:
        body = copy.deepcopy(cls.example)
        del body[field]
        with pytest.raises(ValidationError):
            cls(body=body, topic=cls.topic_base).validate()


@pytest.mark.parametrize("schema_name, cls", CLASSES, ids=IDS)
def test_wrong_types_are_rejected(schema_name, cls):
    body = copy.deepcopy(cls.example)
    body["arch" if "arch" in body else "task_id"] = 42 if "arch" in body else "not-a-number"
    with pytest.raises(ValidationError):
        cls(body=body, topic=cls.topic_base).validate()


@pytest.mark.parametrize("schema_name, cls", CLASSES, ids=IDS)
def test_summary_and_str_read_well(schema_name, cls):
    msg = cls.from_body(copy.deepcopy(cls.example))
    summary = msg.summary
    assert summary and "\n" not in summary and "{" not in summary and "None" not in summary
    assert msg.topic not in summary  # a real sentence, not the default "topic as summary"
    text = str(msg)
    assert text.splitlines()[0] == summary
    assert all(f"{key}: " in text for key in cls.example)
    assert msg.app_name == "fedimg"
    assert msg.agent_name == cls.example.get("agent")


@pytest.mark.parametrize("schema_name, cls", CLASSES, ids=IDS)
def test_registered_under_fedora_messages_entry_point(schema_name, cls):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="fedora.messages")}
    assert eps[schema_name].load() is cls
    # fedora-messaging decodes received messages into the class named in the schema header
    assert fm_message.get_class(fm_message.get_name(cls)) is cls


def test_schemas_are_valid_json_schemas():
    for cls in MESSAGES.values():
        jsonschema.validators.validator_for(cls.body_schema).check_schema(cls.body_schema)


def test_routing_words_never_break_the_topic():
    assert routing_word("us-east-1") == "us-east-1"
    assert routing_word("raw.tar.xz") == "raw_tar_xz"
    assert routing_word("a b#*") == "a_b__"
    assert routing_word(None) == "unknown" and routing_word("") == "unknown"


def test_failure_summary_says_whether_a_retry_may_help():
    body = dict(UploadFailedV1.example, retryable=False, error_kind="verification")
    summary = UploadFailedV1.from_body(body).summary
    assert "will not succeed on retry" in summary and "verification" in summary


def test_base_class_is_not_registered():
    assert FedimgMessage not in MESSAGES.values()


def test_topic_reference_is_generated_from_the_classes():
    root = pathlib.Path(__file__).resolve().parents[2]
    page = (root / messages_doc.DOC).read_text()
    assert messages_doc.render() in page, \
        f"{messages_doc.DOC} is stale: run python -m shared.messages.doc --write"
    assert messages_doc.BEGIN not in (root / "README.md").read_text()  # written once
