"""The JSON Schemas (schemas/) and their loader (ledger/schemas.py)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import paths
from ledger.schemas import SchemaError, Schemas, default_schemas

SCHEMAS = paths.SCHEMAS
EXAMPLES = SCHEMAS / "examples"

# The whole catalogue of DESIGN.md, written out so that a missing schema file fails here.
CATALOGUE = frozenset(
    {
        "controller.registered",
        "producer.registered",
        "producer.revoked",
        "recipient.registered",
        "recipient.updated",
        "recipient.removed",
        "processing_activity.declared",
        "processing_activity.amended",
        "processing_activity.retired",
        "consent.given",
        "consent.withdrawn",
        "processing.performed",
        "disclosure.made",
        "transfer.made",
        "rights_request.received",
        "rights_request.identity_requested",
        "rights_request.identity_verified",
        "rights_request.extended",
        "rights_request.fulfilled",
        "rights_request.refused",
        "rights_request.withdrawn",
        "subject.erased",
        "breach.detected",
        "breach.aware",
        "breach.processor_notified",
        "breach.assessed",
        "breach.notified_authority",
        "breach.subjects_communicated",
        "breach.communication_exempted",
        "breach.closed",
    }
)

# DESIGN.md's table of required `data` fields.
DESIGN_REQUIRED = {
    "processing_activity.declared": {
        "activity_id",
        "name",
        "purposes",
        "lawful_basis",
        "data_categories",
        "subject_categories",
        "recipients",
        "retention",
        "security_measures",
    },
    "consent.given": {"purposes", "method", "notice_version"},
    "consent.withdrawn": {"purposes", "method"},
    "processing.performed": {"activity_id", "basis", "data_categories"},
    "transfer.made": {"recipient_id", "destination_country", "mechanism", "data_categories"},
    "rights_request.received": {"request_id", "right", "received_at"},
    "rights_request.extended": {"request_id", "reason", "subject_informed_at"},
    "rights_request.fulfilled": {"request_id", "at"},
    "rights_request.refused": {"request_id", "at", "reason"},
    "breach.detected": {"breach_id", "detected_at", "description"},
    "breach.aware": {"breach_id", "aware_at"},
    "breach.assessed": {
        "breach_id",
        "risk",
        "subjects_approx",
        "records_approx",
        "data_categories",
    },
    "breach.notified_authority": {"breach_id", "authority", "notified_at", "phase"},
}

CASE_IDS = {
    "breach": "breach_id",
    "rights_request": "request_id",
    "recipient": "recipient_id",
    "processing_activity": "activity_id",
    "producer": "producer_id",
}

SUBJECT = "psn:" + "Vbq3mXoK1rT9wZ2yL8dF4hJ6nP0sU5aC7eG3iM1oQ2w"[:43]
SIG = "A" * 86


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return default_schemas()


def envelope(type_: str, data: dict, **extra) -> dict:
    env = {
        "spec": "auditledger/1",
        "event_id": "0192f7a4-5b6c-7d8e-9f01-23456789abcd",
        "type": type_,
        "controller": "NO-921119224",
        "producer": "crm-eu-1",
        "occurred_at": "2026-05-14T09:12:03.120Z",
        "subject": SUBJECT,
        "data": data,
        "sig": SIG,
    }
    env.update(extra)
    return env


def load(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.json"))


def valid_example(type_: str) -> dict:
    return load(EXAMPLES / type_ / "valid-full.json")


def as_envelope(path: Path) -> dict:
    doc = load(path)
    kind = path.parent.name
    return doc if kind == "envelope" else envelope(kind, doc)


# ------------------------------------------------------------------ catalogue and files
def test_every_catalogue_type_has_a_schema(schemas):
    assert schemas.types == CATALOGUE
    for type_ in CATALOGUE:
        assert (SCHEMAS / "events" / f"{type_}.json").is_file()


@pytest.mark.parametrize("type_", sorted(CATALOGUE))
def test_schema_metadata(schemas, type_):
    schema = schemas.schema_for(type_)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/events/{type_}.json")
    assert schema["title"] == type_
    assert schema["description"].strip()
    assert re.search(r"Art\. \d+", schema["x-source"]), "x-source must cite GDPR articles"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert "ext" in schema["properties"]
    assert set(DESIGN_REQUIRED.get(type_, set())) <= set(schema["required"])
    assert set(schema["required"]) <= set(schema["properties"])
    # the id of the case an event belongs to is always required
    case_id = CASE_IDS.get(type_.split(".")[0])
    if case_id:
        assert case_id in schema["required"]


def walk(node, path=""):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}/{i}")


@pytest.mark.parametrize("name", ["envelope.json", *[f"events/{t}.json" for t in CATALOGUE]])
def test_schema_conventions(name):
    schema = load(SCHEMAS / name)
    for path, node in walk(schema):
        if not isinstance(node, dict):
            continue
        # no floating-point numbers: nothing may admit "number"
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        assert "number" not in types, path
        # closed objects everywhere, except the free-form ext (whose values are typed)
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
        if node.get("format") == "date-time":
            assert "pattern" in node, path


def test_examples_cover_every_type():
    for kind in [*CATALOGUE, "envelope"]:
        names = [p.name for p in (EXAMPLES / kind).glob("*.json")]
        assert any(n.startswith("valid-") for n in names), kind
        assert any(n.startswith("invalid-") for n in names), kind
    assert {p.name for p in EXAMPLES.iterdir()} == {*CATALOGUE, "envelope"}


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example(schemas, path):
    assert path.name.startswith(("valid-", "invalid-")), path
    env = as_envelope(path)
    if path.name.startswith("valid-"):
        schemas.check(env)
    else:
        with pytest.raises(SchemaError) as exc:
            schemas.check(env)
        assert exc.value.code == "schema_violation", exc.value.detail
        assert exc.value.detail


# ------------------------------------------------------------------ API behaviour
def test_default_schemas_is_cached():
    assert default_schemas() is default_schemas()


def test_schemas_from_explicit_root():
    s = Schemas(SCHEMAS)
    assert s.types == CATALOGUE
    assert s.schema_for("consent.given")["title"] == "consent.given"
    with pytest.raises(KeyError):
        s.schema_for("consent.maybe")


def test_unknown_type(schemas):
    env = envelope("consent.maybe", {"purposes": ["x"]})
    with pytest.raises(SchemaError) as exc:
        schemas.check(env)
    assert exc.value.code == "unknown_type"
    assert "consent.maybe" in exc.value.detail


def test_bad_type_pattern_is_schema_violation(schemas):
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope("Consent", valid_example("consent.given")))
    assert exc.value.code == "schema_violation"


def test_envelope_checked_before_type(schemas):
    env = envelope("consent.maybe", {})
    del env["sig"]
    with pytest.raises(SchemaError) as exc:
        schemas.check(env)
    assert exc.value.code == "schema_violation"
    assert "sig" in exc.value.detail


@pytest.mark.parametrize("field", ["received_at", "index", "leaf_hash"])
def test_ledger_fields_rejected(schemas, field):
    env = envelope("consent.given", valid_example("consent.given"), **{field: "x"})
    with pytest.raises(SchemaError) as exc:
        schemas.check(env)
    assert exc.value.code == "schema_violation"
    assert exc.value.detail.startswith(field)


def test_not_a_dict(schemas):
    for doc in ([], "x", None, 1):
        with pytest.raises(SchemaError) as exc:
            schemas.check(doc)
        assert exc.value.code == "schema_violation"


def test_detail_names_field_and_rule(schemas):
    data = valid_example("breach.assessed") | {"risk": "medium"}
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope("breach.assessed", data))
    assert exc.value.detail == ('data.risk: "medium" is not one of ["unlikely","risk","high"]')
    data = valid_example("breach.aware") | {"colour": "red"}
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope("breach.aware", data))
    assert exc.value.detail.startswith("data.colour: unknown field")
    data = valid_example("breach.aware") | {"aware_at": "2026-05-14T09:12:03"}
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope("breach.aware", data))
    assert exc.value.detail.startswith("data.aware_at:")
    assert "offset" in exc.value.detail
    data = {k: v for k, v in valid_example("breach.aware").items() if k != "aware_at"}
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope("breach.aware", data))
    assert exc.value.detail == 'data: "aware_at" is a required property'


def test_processing_needs_subject_or_count(schemas):
    data = {"activity_id": "a", "basis": "A6-1-a", "data_categories": ["contact"]}
    schemas.check(envelope("processing.performed", data))  # subject in the envelope
    env = envelope("processing.performed", data)
    del env["subject"]
    with pytest.raises(SchemaError) as exc:
        schemas.check(env)
    assert exc.value.code == "schema_violation"
    assert "subject_count" in exc.value.detail
    schemas.check(envelope("processing.performed", data | {"subject_count": 3}))
    env = envelope("processing.performed", data | {"subject_count": 3})
    del env["subject"]
    schemas.check(env)


@pytest.mark.parametrize(
    "type_",
    ["consent.given", "consent.withdrawn", "rights_request.received", "subject.erased"],
)
def test_subject_required_for_subject_events(schemas, type_):
    env = envelope(type_, valid_example(type_))
    del env["subject"]
    with pytest.raises(SchemaError) as exc:
        schemas.check(env)
    assert exc.value.code == "schema_violation"
    assert "subject" in exc.value.detail


# ------------------------------------------------------------------ floats and ext
INTEGRAL_FLOAT_CASES = [
    ("breach.assessed", ["subjects_approx"], 1200.0),
    ("breach.assessed", ["subjects_approx"], 1200.5),
    ("processing.performed", ["subject_count"], 3.0),
    ("transfer.made", ["count"], 1e3),
    ("controller.registered", ["answer_within_days"], 30.0),
    ("consent.given", ["ext", "score"], 0.5),
    ("consent.given", ["ext", "score"], 1.0),
    ("consent.given", ["ext", "deep", "list"], [1, 2, 3.0]),
    ("breach.closed", ["ext", "a"], [{"b": [{"c": 2.0}]}]),
]


@pytest.mark.parametrize(("type_", "where", "value"), INTEGRAL_FLOAT_CASES)
def test_floats_rejected_anywhere_in_data(schemas, type_, where, value):
    data = copy.deepcopy(valid_example(type_))
    node = data
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = value
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope(type_, data))
    assert exc.value.code == "schema_violation"
    assert exc.value.detail.startswith("data." + ".".join(where))


EXT = {
    "system": "crm",
    "n": 12,
    "ok": True,
    "none": None,
    "list": [1, "a", [False]],
    "obj": {"nested": {"deeper": ["x", -9007199254740991]}},
}


@pytest.mark.parametrize("type_", sorted(CATALOGUE))
def test_ext_allowed_everywhere(schemas, type_):
    data = valid_example(type_) | {"ext": EXT}
    schemas.check(envelope(type_, data))
    with pytest.raises(SchemaError):
        schemas.check(envelope(type_, valid_example(type_) | {"ext": "not an object"}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    type_=st.sampled_from(sorted(CATALOGUE)),
    key=st.text(min_size=1, max_size=20),
    value=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=5,
    ),
)
def test_random_extra_keys_in_data_rejected(type_, key, value):
    schemas = default_schemas()
    data = valid_example(type_)
    if key in schemas.schema_for(type_)["properties"]:
        return
    data[key] = value
    with pytest.raises(SchemaError) as exc:
        schemas.check(envelope(type_, data))
    assert exc.value.code == "schema_violation"


def test_examples_are_json_without_floats():
    for path in example_files():
        if "float" in path.name:
            continue
        floats: list[str] = []
        json.loads(path.read_text(), parse_float=floats.append)
        assert not floats, path
