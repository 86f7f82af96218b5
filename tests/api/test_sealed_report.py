"""The report (every format) and evidence bundles say "sealed (kept)" or "erased" for a
case's personal data, never the plaintext; bundles made before and after an erasure both
verify (the bundle keeps the ciphertext, which is what the signatures cover); and the
projections keep the erased subject's non-personal facts and flag processing afterwards."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import openpyxl
import orjson
from pypdf import PdfReader

from ledger.bundle import BundleSource
from ledger.bundle_format import REPORT_HTML, REPORT_JSON
from ledger.clock import format_rfc3339
from ledger.verify import verify_source
from tests.api.conftest import Api
from tests.api.test_evidence import verify_cli
from tests.api.test_sealed_read import CONTACT, erase, sealed_event
from tests.conftest import CONTROLLER

BASE = f"/v1/controllers/{CONTROLLER}"
SECRETS = (CONTACT["name"], CONTACT["email"], "Nordmann")


def report_texts(api: Api) -> dict[str, str]:
    """The report in every format, as text."""
    out = {f: api.get(f"{BASE}/report", params={"format": f}).text
           for f in ("json", "html", "csv")}
    pdf = api.get(f"{BASE}/report", params={"format": "pdf"}).content
    out["pdf"] = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    wb = openpyxl.load_workbook(io.BytesIO(
        api.get(f"{BASE}/report", params={"format": "xlsx"}).content))
    out["xlsx"] = "\n".join(" | ".join(str(c) for c in row if c is not None)
                            for ws in wb.worksheets for row in ws.iter_rows(values_only=True))
    return out


def bundle(api: Api, tmp_path: Path, name: str) -> tuple[Path, dict[str, bytes]]:
    r = api.get(f"{BASE}/evidence")
    assert r.status_code == 200, r.text
    path = tmp_path / name
    path.write_bytes(r.content)
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        return path, {n: zf.read(n) for n in zf.namelist()}


def report_row(members: dict[str, bytes], request_id: str) -> dict[str, object]:
    doc = orjson.loads(members[REPORT_JSON])
    return next(r for r in doc["rights_requests"] if r["request_id"] == request_id)


def test_report_and_bundles_before_and_after_erasure(api: Api, tmp_path: Path) -> None:
    now = api.world.clock.now()
    consent = sealed_event(api, "consent.given", {
        "purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"},
        CONTACT["email"], {"email": CONTACT["email"]})
    received = sealed_event(api, "rights_request.received", {
        "request_id": "r-erase", "right": "erasure",
        "received_at": format_rfc3339(now - timedelta(days=3))}, CONTACT["email"], CONTACT)
    fulfilled = api.event(type_="rights_request.fulfilled", subject=CONTACT["email"],
                          data={"request_id": "r-erase", "at": format_rfc3339(now)})
    assert {r["status"] for r in api.post([consent, received, fulfilled]).json()} == {
        "accepted"}

    before = report_texts(api)
    for fmt in ("html", "pdf", "xlsx"):
        assert "sealed (kept)" in before[fmt], fmt
    assert orjson.loads(before["json"])["rights_requests"][-1]["personal_data"]["state"] \
        == "sealed"
    path_before, m_before = bundle(api, tmp_path, "before.zip")
    assert report_row(m_before, "r-erase")["personal_data"]["state"] == "sealed"  # type: ignore[index]
    assert b"sealed (kept)" in m_before[REPORT_HTML]

    erase(api, CONTACT["email"], "r-erase")
    api.world.clock.advance(timedelta(hours=1))

    after = report_texts(api)
    for fmt in ("html", "pdf", "xlsx"):
        assert "erased" in after[fmt] and "sealed (kept)" not in after[fmt], fmt
    row = next(r for r in orjson.loads(after["json"])["rights_requests"]
               if r["request_id"] == "r-erase")
    assert row["personal_data"]["state"] == "erased" and row["personal_data"]["erased_at"]
    path_after, m_after = bundle(api, tmp_path, "after.zip")
    assert report_row(m_after, "r-erase")["personal_data"]["state"] == "erased"  # type: ignore[index]
    assert b"erased 20" in m_after[REPORT_HTML]

    for texts in (before, after):
        for fmt, text in texts.items():
            for secret in SECRETS:
                assert secret not in text, (fmt, secret)
    for members in (m_before, m_after):
        for name, data in members.items():
            for secret in SECRETS:
                assert secret.encode() not in data, (name, secret)
    # The bundle keeps the ciphertext: the same sealed bytes before and after.
    for members in (m_before, m_after):
        assert received["sealed"]["ct"].encode() in b"".join(members.values())

    key = api.world.ledger.verifier_key
    for path in (path_before, path_after):
        code, out = verify_cli(path, "--log-key", key)
        assert code == 0, out
        assert verify_source(BundleSource(path), [key]).ok
    # ... and the whole log.
    from ledger.verify import LogSource
    assert verify_source(LogSource(api.world.ledger.log), [key],
                         api.world.ledger.verifier).ok


def test_erased_subject_keeps_its_facts_and_later_processing_is_a_finding(api: Api) -> None:
    now = api.world.clock.now()
    consent = sealed_event(api, "consent.given", {
        "purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"},
        CONTACT["email"], {"email": CONTACT["email"]})
    before = api.event(type_="processing.performed", subject=CONTACT["email"], data={
        "activity_id": "newsletter", "basis": "A6-1-a", "purpose": "newsletter",
        "data_categories": ["contact"], "operation": "send"})
    assert {r["status"] for r in api.post([consent, before]).json()} == {"accepted"}
    erased_by = erase(api, CONTACT["email"], "r-x")
    api.world.clock.advance(timedelta(hours=2))
    later = api.event(type_="processing.performed", subject=CONTACT["email"], data={
        "activity_id": "newsletter", "basis": "A6-1-a", "purpose": "newsletter",
        "data_categories": ["contact"], "operation": "send"})
    assert api.post([later]).json()[0]["status"] == "accepted"

    findings = [f for f in api.get(f"{BASE}/findings", params={"limit": 1000}).json()["items"]
                if f["code"] == "processing_after_erasure"]
    assert [f["evidence"] for f in findings] == [[erased_by, later["event_id"]]]
    state = api.get(f"{BASE}/consents/{consent['subject']}").json()
    # Non-personal facts outlive the erasure: the consent, when, for what.
    (purpose,) = [p for p in state["purposes"] if p["purpose"] == "newsletter"]
    assert purpose["state"] == "given" and consent["event_id"] in purpose["evidence"]
    assert state["erased"]["event_id"] == erased_by
    assert state["erased"]["at"].startswith(format_rfc3339(now)[:16])
