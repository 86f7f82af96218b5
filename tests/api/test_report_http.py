"""GET /v1/controllers/{c}/report in every format, and the consent overview without a
subject, over HTTP: what a DPO or an auditor downloads."""

from __future__ import annotations

import io
import re

import openpyxl
from pypdf import PdfReader

from tests.api.conftest import Api
from tests.conftest import CONTROLLER, OTHER

REPORT = f"/v1/controllers/{CONTROLLER}/report"


def test_report_json_is_anchored_to_a_checkpoint_covering_it(api: Api) -> None:
    r = api.get(REPORT)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    cp = doc["anchor"]["checkpoint"]
    assert cp["size"] == doc["controller"]["events"] and doc["anchor"]["covers_report"]
    live = api.get(f"/v1/controllers/{CONTROLLER}/checkpoint").json()
    assert (cp["root"], cp["log_key"]) == (live["root"], live["log_key"])
    assert doc["consent"]["given"] == 5  # the fixture's five consents, one purpose each
    assert doc["findings"] == api.get(f"/v1/controllers/{CONTROLLER}/findings").json()["items"]


def test_report_period_counts_only_what_falls_in_it(api: Api) -> None:
    doc = api.get(REPORT, params={"from": "2000-01-01", "to": "2000-02-01"}).json()
    assert doc["consent"]["given"] == 0
    assert doc["period"] == {"from": "2000-01-01T00:00:00.000Z",
                             "to": "2000-02-01T00:00:00.000Z"}
    assert doc["consent"]["active"] == 1  # the overview is as of now


def test_report_formats(api: Api) -> None:
    page = api.get(REPORT, params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page.text, re.I)
    assert "Bedre Bedrift AS" in page.text and page.text.count("<svg") == 3
    pdf = api.get(REPORT, params={"format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    assert 'filename="report-' in pdf.headers["content-disposition"]
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Bedre Bedrift AS" in text and CONTROLLER in text
    xlsx = api.get(REPORT, params={"format": "xlsx"})
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert "Record of processing" in wb.sheetnames
    csv = api.get(REPORT, params={"format": "csv"})
    assert csv.text.splitlines()[0] == "code,controller,severity,detail,evidence"


def test_report_bad_input_and_other_tenants(api: Api) -> None:
    assert api.get(REPORT, params={"format": "docx"}).status_code == 422
    bad = api.get(REPORT, params={"from": "2026-02-01", "to": "2026-01-01"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"
    assert api.get(REPORT, who="auditor_b").status_code == 404
    assert api.get(f"/v1/controllers/{OTHER}/report", who="auditor_b").status_code == 200


def test_consent_overview_without_subject(api: Api) -> None:
    r = api.get(f"/v1/controllers/{CONTROLLER}/consents")
    assert r.status_code == 200
    body = r.json()
    assert body["subjects"] == 1  # every fixture consent is Alice's
    (newsletter,) = body["purposes"]
    assert newsletter == {"purpose": "newsletter", "in_force": 1, "withdrawn": 0, "expired": 0,
                          "subjects": 1, "given_events": 5, "withdrawn_events": 0}
    early = api.get(f"/v1/controllers/{CONTROLLER}/consents",
                    params={"as_of": "2000-01-01"}).json()
    assert early["purposes"] == [] and early["subjects"] == 0
    assert api.get(f"/v1/controllers/{CONTROLLER}/consents", who="auditor_b").status_code == 404


def test_evidence_bundle_carries_the_report_of_its_period(api: Api) -> None:
    import zipfile

    import orjson

    r = api.get(f"/v1/controllers/{CONTROLLER}/evidence",
                params={"from": "2000-01-01", "to": "2000-02-01"})
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        doc = orjson.loads(z.read("report/accountability.json"))
        page = z.read("report/accountability.html").decode()
    assert doc["period"] == {"from": "2000-01-01T00:00:00.000Z",
                             "to": "2000-02-01T00:00:00.000Z"}
    assert doc["consent"]["given"] == 0  # the fixture's consents are outside that period
    assert "Consent overview per purpose" in page and "<svg" in page
