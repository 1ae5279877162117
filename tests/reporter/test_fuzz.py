"""Fuzzed bodies of every message family (hypothesis): reading, folding and rendering never raise,
and whatever reaches the outputs is well-formed: image names read as names, text is capped and
encodable, every output file is valid UTF-8 JSON or HTML.

Each example starts from a real body of its family and replaces or adds fields with hostile
values: huge and oversized integers, infinities, lone surrogates, bidi overrides, markup, long
strings, nested lists and objects of them.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporter import outputs, site
from reporter.fields import IMAGE_NAME, MAX_TEXT, Oversized
from reporter.fold import FoldState, apply_row, image_records
from shared.messages import MESSAGES
from standins.datagrepper_emulator import row
from tests.reporter.conftest import elements

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples"
PROD = "org.fedoraproject.prod."


def _sample(prefix: str) -> dict[str, Any]:
    [path] = sorted(SAMPLES.glob(prefix + "*"))
    data = json.loads(path.read_text())
    return data.get("msg", data.get("body", data))


FAMILIES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "ours": [(PROD + base, cls.example) for base, cls in sorted(MESSAGES.items())],
    "fedora_image_uploader": [
        (PROD + "fedora_image_uploader.published.v1." + kind,
         _sample(f"fedora_image_uploader.published.v1.{kind}"))
        for kind in ("aws", "azure", "gcp", "container")],
    "legacy": [(PROD + "fedimg.image." + event, _sample(f"fedimg-image.{sample}"))
               for event, sample in (("upload", "upload-completed"), ("copy", "copy"),
                                     ("publish", "publish"), ("test", "upload-started"))],
}

HOSTILE = ["\ud800", "a\udfffb", "\u202eevil", "javascript:alert(1)", '"><script>x</script>',
           "x" * 3000, "Fedora-Cloud-Base-41-1.4.x86_64", "us-east-1", "ami-0123abcd",
           "Rawhide", "x86_64", "Cloud_Base", "completed", "https://e.org/a b", "", "quay.io",
           10**400, Oversized(5000), float("inf"), float("nan"), -1e11, -1, 2**63, 5, True, None,
           [], {}, ["x" * 1000], {"us-east-1": "ami-0123abcd"}, {"compose_id": 5}]
texts = st.one_of(st.sampled_from([h for h in HOSTILE if isinstance(h, str)]), st.text(max_size=20))
leaves = st.one_of(
    st.sampled_from(HOSTILE), texts, st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.builds(Oversized, st.integers(4301, 9000)))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=8)


@st.composite
def fuzzed(draw, family: str) -> tuple[str, Any]:
    topic, body = draw(st.sampled_from(FAMILIES[family]))
    if draw(st.integers(0, 20)) == 0:
        return topic, draw(values)  # the whole body replaced
    keys = sorted(body) + ["name", "region", "regions", "tags", "registries", "status"]
    changes = draw(st.dictionaries(st.sampled_from(keys), values, min_size=1, max_size=2))
    dropped = draw(st.sets(st.sampled_from(sorted(body)), max_size=2))
    return topic, {**{k: v for k, v in body.items() if k not in dropped}, **changes}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*_strings(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check(rows: list[tuple[str, Any]]) -> None:
    state = FoldState()
    for i, (topic, body) in enumerate(rows):
        apply_row(state, row(f"m{i}", 1_700_000_000.0 + i, topic, body))
    assert state.read == len(rows)
    images = image_records(state)
    for img in images:
        assert IMAGE_NAME.fullmatch(img["name"]), img["name"]
        for text in _strings(img):
            assert len(text) <= MAX_TEXT, text[:80]
            text.encode("utf-8")  # no lone surrogate reaches an output
            assert "\u202e" not in text
    hist = outputs.history_block(state, "http://dg.test")
    docs = [outputs.images_json(images, state, "http://dg.test", "2026-01-01T00:00:00Z"),
            outputs.latest_json(images, state, "http://dg.test", "2026-01-01T00:00:00Z"),
            *outputs.streams(images, state).values()]
    for doc in docs:
        json.loads(outputs.dumps(doc).decode("utf-8"))
    for path, data in site.render(images, hist, "2026-01-01T00:00:00Z").items():
        text = data.decode("utf-8")
        if path.endswith(".html"):
            assert "<script>x" not in text
            for _, attrs in elements(text):  # no link may run script, whatever history said
                for key in ("href", "src"):
                    assert not (attrs.get(key) or "").strip().lower().startswith("javascript:")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fuzzed("ours"), min_size=1, max_size=4))
def test_fuzzed_bodies_of_our_messages(rows):
    _check([(t, b) for t, b in FAMILIES["ours"]] + rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fuzzed("fedora_image_uploader"), min_size=1, max_size=4))
def test_fuzzed_bodies_of_fedora_image_uploader(rows):
    _check(FAMILIES["fedora_image_uploader"] + rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(fuzzed("legacy"), min_size=1, max_size=4))
def test_fuzzed_bodies_of_legacy_fedimg(rows):
    _check(FAMILIES["legacy"] + rows)
