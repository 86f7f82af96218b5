"""ledger.webforms: a DPO's form becomes a signed event of ``web-forms``, or field errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.envelope import pseudonym
from ledger.verify import LogSource, verify_source
from ledger.webforms import (
    PRODUCER,
    STEPS,
    FormRejected,
    WebForms,
    parse_local_time,
    steps_of,
    subject_key,
    zone,
)
from tests.conftest import CONTROLLER, World


def stored(world: World, event_id: str) -> dict:
    return world.ledger.log.lookup(CONTROLLER, [event_id])[event_id].envelope()


def test_every_step_the_issue_names_has_a_form() -> None:
    assert [s.slug for s in steps_of("breach")] == [
        "detected", "aware", "assessed", "notified", "communicated", "exempted", "closed"]
    assert [s.slug for s in steps_of("rights_request")] == [
        "received", "identity_requested", "identity_verified", "extended", "fulfilled",
        "refused", "withdrawn"]
    assessed = {f.name: f for f in STEPS["breach", "assessed"].fields}
    assert assessed["risk"].options == ("unlikely", "risk", "high")
    assert assessed["subjects_approx"].kind == "count" and assessed["risk"].required


def test_a_breach_through_its_steps_is_signed_by_web_forms(world: World) -> None:
    forms = WebForms(world.ledger)
    now = world.clock.now()
    ids = []
    local = (now - timedelta(hours=2)).astimezone(zone("Europe/Oslo"))
    steps = [
        ("detected", {"breach_id": "br-web-1", "description": "mailbox rule forwarding mail",
                      "detected_at": local.strftime("%Y-%m-%d %H:%M")}),
        ("aware", {"aware_at": local.strftime("%Y-%m-%d %H:%M")}),
        ("assessed", {"risk": "high", "subjects_approx": "40", "records_approx": "90",
                      "data_categories": "contact, health", "nature": ["confidentiality"],
                      "special_categories": "yes"}),
        ("notified", {"authority": "Datatilsynet", "phase": "initial",
                      "notified_at": now.isoformat()}),
        ("communicated", {"communicated_at": now.isoformat(), "subject_count": "40"}),
        ("closed", {"summary": "rule removed, passwords reset"}),
    ]
    for slug, form in steps:
        rec = forms.record(CONTROLLER, "breach", slug, form, "k123", "admin",
                           case_id=None if slug == "detected" else "br-web-1")
        assert not rec.duplicate
        ids.append(rec.event_id)
    envs = [stored(world, i) for i in ids]
    assert [e["type"] for e in envs] == [
        "breach.detected", "breach.aware", "breach.assessed", "breach.notified_authority",
        "breach.subjects_communicated", "breach.closed"]
    assert {e["producer"] for e in envs} == {PRODUCER}
    assert all(e["data"]["ext"] == {"recorded_by": "k123", "recorded_role": "admin"}
               for e in envs)
    assert all(e["data"]["breach_id"] == "br-web-1" for e in envs)
    assert envs[0]["data"]["detected_at"].endswith("Z")  # Oslo time, written in UTC
    assert envs[2]["data"]["data_categories"] == ["contact", "health"]
    assert envs[2]["data"]["subjects_approx"] == 40
    assert envs[2]["data"]["special_categories"] is True
    registered = world.ledger.registry.controllers[CONTROLLER].producers[PRODUCER]
    assert registered.keys[0].types == ("breach.*", "rights_request.*")
    report = verify_source(LogSource(world.ledger.log), [world.ledger.verifier_key],
                           world.ledger.verifier)
    assert report.ok, report.problems


def test_a_rights_request_stores_only_the_pseudonym(world: World) -> None:
    forms = WebForms(world.ledger)
    rec = forms.record(CONTROLLER, "rights_request", "received", {
        "request_id": "dsr-web-1", "right": "erasure", "received_at": "2026-05-14 09:00",
        "subject_identifier": "Kari@Example.NO"}, "k1", "admin")
    env = stored(world, rec.event_id)
    key = subject_key(world.ledger, CONTROLLER)
    assert env["subject"] == pseudonym(key, "kari@example.no")
    assert "example" not in repr(env).lower()
    assert env["data"]["received_at"] == "2026-05-14T07:00:00.000Z"  # CEST = UTC+2


def test_field_errors_name_the_field(world: World) -> None:
    forms = WebForms(world.ledger)
    with pytest.raises(FormRejected) as exc:
        forms.record(CONTROLLER, "breach", "assessed", {"risk": "", "subjects_approx": "x"},
                     "k1", "admin", case_id="br-1")
    assert exc.value.errors == {"risk": "required", "subjects_approx": "'x' is not a whole "
                                "number", "records_approx": "required",
                                "data_categories": "required"}
    with pytest.raises(FormRejected) as exc:  # ingest's schema rule, mapped to the field
        forms.record(CONTROLLER, "breach", "assessed", {
            "risk": "medium", "subjects_approx": "1", "records_approx": "1",
            "data_categories": "contact"}, "k1", "admin", case_id="br-1")
    assert list(exc.value.errors) == ["risk"]
    assert '"medium" is not one of' in exc.value.errors["risk"]
    with pytest.raises(FormRejected) as exc:
        forms.record(CONTROLLER, "breach", "aware", {"aware_at": "2026-02-30 10:00"},
                     "k1", "admin", case_id="br-1")
    assert "not a time" in exc.value.errors["aware_at"]
    with pytest.raises(FormRejected) as exc:
        future = (world.clock.now() + timedelta(days=1)).isoformat()
        forms.record(CONTROLLER, "breach", "aware", {"aware_at": future}, "k1", "admin",
                     case_id="br-1")
    assert "in the future" in exc.value.errors["aware_at"]
    with pytest.raises(FormRejected) as exc:
        forms.record(CONTROLLER, "breach", "aware", {"aware_at": "2026-05-14 10:00"},
                     "k1", "admin", case_id="has space")
    assert "breach_id" in exc.value.errors
    types = [e.type for e in world.ledger.log.events(CONTROLLER)]
    assert not [t for t in types if t.startswith("breach.")], types  # nothing recorded


def test_only_recording_roles_may_record(world: World) -> None:
    with pytest.raises(PermissionError):
        WebForms(world.ledger).record(CONTROLLER, "breach", "closed", {}, "k1", "auditor",
                                      case_id="br-1")


def test_the_same_form_sent_twice_is_recorded_once(world: World) -> None:
    forms = WebForms(world.ledger)
    form_id = "0b7c2f4e-1f1e-4a7c-9a52-5f0a3d2c1b10"
    first = forms.record(CONTROLLER, "breach", "closed", {}, "k1", "admin", case_id="br-1",
                         event_id=form_id)
    world.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    again = forms.record(CONTROLLER, "breach", "closed", {}, "k1", "admin", case_id="br-1",
                         event_id=form_id)
    assert (first.event_id, first.duplicate) == (form_id, False)
    assert (again.event_id, again.duplicate) == (form_id, True)


def test_local_times_follow_the_controllers_zone() -> None:
    oslo = zone("Europe/Oslo")
    assert parse_local_time("2026-12-24 16:00", oslo).utcoffset() == timedelta(hours=1)
    assert parse_local_time("2026-07-01T16:00", oslo).utcoffset() == timedelta(hours=2)
    assert parse_local_time("2026-07-01T16:00:00Z", oslo).utcoffset() == timedelta(0)
