"""The accountability report: its figures checked against the read models (recomputed
here from the rows the other queries return, and against answers known by hand), and its
renderings opened as their readers would (openpyxl, pypdf, an XML parser), on both
read-model stores."""

from __future__ import annotations

import io
import math
import re
import statistics
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import report_scenario as rs
from projection_streams import ACTIVITIES, CID, Scenario
from pypdf import PdfReader

from ledger.clock import FixedClock, parse_rfc3339
from projections import queries as q
from projections.report import charts, render, to_html
from projections.store import ReadModelStore

OSLO = ZoneInfo("Europe/Oslo")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def built(scenario: Scenario, store: ReadModelStore) -> tuple[ReadModelStore, dict[str, Any]]:
    rs.build(scenario)
    scenario.project(store)
    doc = q.report(store, CID, clock=FixedClock(rs.REPORT_NOW), start=rs.START, end=rs.END)
    return store, doc


def _local(at: str) -> date:
    return parse_rfc3339(at).astimezone(OSLO).date()


def _in_period(at: str | None) -> bool:
    return at is not None and rs.START <= parse_rfc3339(at) < rs.END


def test_timeliness_matches_the_rights_requests_read_model(built: Any) -> None:
    store, doc = built
    rows = [r for r in q.rights_requests(store, CID, clock=FixedClock(rs.REPORT_NOW))
            if _in_period(r["received_at"])]
    answered = [r for r in rows if r["status"] in ("fulfilled", "refused")]
    days = sorted((_local(r["closed_at"]) - _local(r["received_at"])).days for r in answered)
    on_time = [_local(r["closed_at"]) <= date.fromisoformat(
        r["extended_due"] if r["extended"] else r["due"]) for r in answered]
    tl = doc["timeliness"]
    assert days == sorted(rs.DAYS)  # the scenario's known answers
    assert tl["received"] == len(rows) == 5
    assert tl["answered"] == len(answered) == 4
    assert tl["open"] == 1
    assert tl["median_days"] == statistics.median(days) == 25.5
    assert tl["p95_days"] == days[math.ceil(0.95 * len(days)) - 1] == 52
    assert tl["on_time"] == sum(on_time) == 3
    assert tl["on_time_share"] == pytest.approx(0.75)
    assert tl["extended"] == sum(r["extended"] for r in rows) == 1
    by_right = {r["right"]: r for r in tl["by_right"]}
    access = [d for r, d in zip(answered, [(_local(x["closed_at"]) - _local(x["received_at"]))
                                          .days for x in answered], strict=True)
              if r["right"] == "access"]
    assert by_right["access"]["answered"] == len(access) == 2
    assert by_right["access"]["median_days"] == statistics.median(access) == 31
    assert sum(b["count"] for b in tl["histogram"]) == 4
    assert len(tl["histogram"]) == max(rs.DAYS) // 7 + 1 == 8
    assert [b["count"] for b in tl["histogram"]] == [1, 1, 0, 0, 0, 1, 0, 1]


def test_consent_figures_match_the_consent_read_model(built: Any) -> None:
    store, doc = built
    rows = store.controller_consent_rows(CID)
    in_period = [r for r in rows if _in_period(r[2])]
    c = doc["consent"]
    assert c["given"] == sum(r[5] == "given" for r in in_period) == 4
    assert c["withdrawn"] == sum(r[5] == "withdrawn" for r in in_period) == 1
    assert {m["month"]: (m["given"], m["withdrawn"]) for m in c["over_time"]} == {
        "2026-01": (1, 0), "2026-02": (3, 0), "2026-03": (0, 1)}
    assert {m["method"]: (m["given"], m["withdrawn"]) for m in c["by_method"]} == {
        "web_banner": (2, 0), "app": (2, 0), "account_page": (0, 1)}
    # the overview per purpose is what consents(subject) says of each subject that day
    states: Counter[tuple[str, str]] = Counter()
    for subject in sorted({r[0] for r in rows}):
        for p in q.consents(store, CID, subject, as_of=rs.REPORT_NOW)["purposes"]:
            states[(p["purpose"], p["state"])] += 1
    over = {p["purpose"]: p for p in c["overview"]}
    for purpose in ("marketing", "profiling"):
        for key, state in (("in_force", "given"), ("withdrawn", "withdrawn"),
                           ("expired", "expired")):
            assert over[purpose][key] == states[(purpose, state)], (purpose, key)
    assert (over["marketing"]["in_force"], over["marketing"]["withdrawn"]) == (2, 1)
    assert (over["profiling"]["in_force"], over["profiling"]["expired"]) == (1, 1)
    assert c["active"] == 3
    assert q.consent_overview(store, CID, as_of=rs.REPORT_NOW)["purposes"] == c["overview"]
    # before Dave's consent (June), marketing had one subject in force
    early = q.consent_overview(store, CID, as_of="2026-04-01T00:00:00Z")
    assert {p["purpose"]: p["in_force"] for p in early["purposes"]} == {
        "marketing": 1, "profiling": 1}
    assert early["subjects"] == 3


def test_breaches_transfers_bases_and_anchor(built: Any) -> None:
    store, doc = built
    assert [b["breach_id"] for b in doc["breach_timelines"]] == ["br-1", "br-2"]
    br1, br2 = doc["breach_timelines"]
    view = {b["breach_id"]: b for b in q.breaches(store, CID, clock=FixedClock(rs.REPORT_NOW))}
    assert br1["notified_at"] == view["br-1"]["notified_at"]
    assert br1["assessed_at"] == "2026-01-21T10:00:00.000Z"
    assert br1["hours_to_notify"] == 48.0 and br1["hours_left"] is None
    assert br2["assessed_at"] is None
    due = parse_rfc3339(view["br-2"]["authority_due"])
    assert br2["hours_left"] == round((due - rs.REPORT_NOW).total_seconds() / 3600, 1) < 0
    ts = [t for t in q.transfers(store, CID) if _in_period(t["occurred_at"])]
    assert doc["transfers"]["total"] == len(ts) == 2
    assert len(doc["transfers"]["invalid"]) == sum(not t["valid"] for t in ts) == 1
    mech = {(m["mechanism"], m["destination_country"]): m
            for m in doc["transfers"]["by_mechanism"]}
    assert mech[("dpf", "US")]["valid"] == 1 and mech[("none", "IN")]["invalid"] == 1
    assert [b["activity_id"] for b in doc["lawful_bases"]] == sorted(
        a["activity_id"] for a in ACTIVITIES)
    assert doc["identity"]["policy"] == "strict"
    assert doc["anchor"]["checkpoint"] is None
    assert any("auditledger verify" in c for c in doc["anchor"]["verify"])
    # the keys the evidence bundle and older callers read are still there
    assert {"controller", "generated_at", "identity_policy", "ropa", "recipients",
            "rights_requests", "breaches", "transfers", "deadlines", "findings"} <= set(doc)


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def test_charts_parse_and_hold_one_mark_per_value(built: Any) -> None:
    _, doc = built
    bars = _svg(charts.timeliness_svg(doc)).iter(f"{SVG}rect")
    assert len([b for b in bars if b.get("class") == "bar"]) == 8
    points = [c for c in _svg(charts.breach_timelines_svg(doc)).iter(f"{SVG}circle")
              if c.get("class") == "point"]
    assert len(points) == 4 + 2
    points = [c for c in _svg(charts.consents_svg(doc)).iter(f"{SVG}circle")
              if c.get("class") == "point"]
    assert len(points) == 3 * 2  # three months, given and withdrawn
    empty = {**doc, "breach_timelines": [], "consent": {**doc["consent"], "over_time": []},
             "timeliness": {**doc["timeliness"], "histogram": []}}
    for draw in (charts.timeliness_svg, charts.breach_timelines_svg, charts.consents_svg):
        root = _svg(draw(empty))
        assert not list(root.iter(f"{SVG}circle")) and not list(root.iter(f"{SVG}rect"))


def test_html_is_self_contained_and_says_things_in_words(built: Any) -> None:
    _, doc = built
    page = to_html(doc)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I)
    assert "url(" not in page and "<script" not in page and "<link" not in page
    assert page.count("<svg") == 3
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert cells and not {"True", "False", "None", "null", "[]"} & set(cells)
    assert not any(c.startswith(("[", "{")) for c in cells)
    assert "Bedre Bedrift AS" in page and "25.5 days" in page and "75 %" in page
    assert "not yet assessed" in page  # br-2's risk and assessment
    assert "overdue by 3384 h" in page
    # local time beside UTC: br-1 aware 10:00 UTC is 11:00 in Oslo (CET)
    assert "2026-01-20 11:00 CET (10:00 UTC)" in page


def test_xlsx_holds_every_section_and_a_row_per_activity(built: Any) -> None:
    _, doc = built
    wb = openpyxl.load_workbook(io.BytesIO(render(doc, "xlsx")))
    assert {"Summary", "Findings", "Record of processing", "Lawful bases",
            "Consent overview", "Rights timeliness", "Breaches", "Transfers",
            "Anchor"} <= set(wb.sheetnames)
    ws = wb["Record of processing"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:5] == ("Activity", "Name", "Status", "Purposes", "Lawful basis")
    assert sorted(r[0] for r in rows[1:]) == sorted(a["activity_id"] for a in ACTIVITIES)
    billing = next(r for r in rows[1:] if r[0] == "billing")
    assert billing[4] == "Art. 6(1)(b) contract, Art. 6(1)(c) legal obligation"
    tl = list(wb["Rights timeliness"].iter_rows(values_only=True))
    assert tl[1][:4] == ("all", 5, 4, 1)  # counts are numbers in the sheet
    findings = list(wb["Findings"].iter_rows(values_only=True))
    assert len(findings) - 1 == len(doc["findings"])


def test_pdf_text_names_the_controller_findings_and_figures(built: Any) -> None:
    _, doc = built
    data = render(doc, "pdf")
    assert data.startswith(b"%PDF-")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Bedre Bedrift AS" in text
    assert "dsr_overdue" in text and "transfer_without_valid_mechanism" in text
    assert "25.5 days" in text and "75 %" in text


def test_report_period_bounds_and_unknown_controller(scenario: Scenario,
                                                     store: ReadModelStore) -> None:
    rs.build(scenario)
    scenario.project(store)
    whole = q.report(store, CID, clock=FixedClock(rs.REPORT_NOW))
    assert whole["timeliness"]["received"] == 6  # r6 (June) counted without a period
    assert whole["period"] == {"from": None, "to": None}
    with pytest.raises(q.UnknownControllerError):
        q.report(store, "XX-NOBODY")
    with pytest.raises(q.UnknownControllerError):
        q.consent_overview(store, "XX-NOBODY")


def test_cli_report_formats(scenario: Scenario, tmp_path: Path) -> None:
    import subprocess
    import sys

    rs.build(scenario)
    scenario.flush()
    scenario.ledger.flush()
    cli = [sys.executable, "-c", "from ledger.cli import main; main()", "report", "--data",
           str(scenario.data_dir), "--controller", CID, "--from", "2026-01-01", "--to",
           "2026-05-01"]
    out = tmp_path / "r.xlsx"
    done = subprocess.run([*cli, "--format", "xlsx", "--out", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Record of processing" in openpyxl.load_workbook(out).sheetnames
    a = subprocess.run([*cli, "--json"], capture_output=True, timeout=120)
    b = subprocess.run([*cli, "--format", "json"], capture_output=True, timeout=120)
    import orjson

    da, db = orjson.loads(a.stdout), orjson.loads(b.stdout)
    assert da["timeliness"]["received"] == db["timeliness"]["received"] == 5
    assert da["anchor"]["checkpoint"]["size"] == da["controller"]["events"]
    assert da["anchor"]["covers_report"] is True
    bad = subprocess.run([*cli, "--format", "docx"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--format" in bad.stderr
    bad = subprocess.run([*cli[:-4], "--from", "2026-05-01", "--to", "2026-01-01"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "after" in bad.stderr


def test_pdf_cuts_long_tables_and_evidence_lists(built: Any) -> None:
    _, doc = built
    many = [{**doc["findings"][0], "evidence": [f"id-{i}" for i in range(40)]}] * 230
    data = render({**doc, "findings": many}, "pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "and 30 more rows" in text  # 230 findings, 200 shown
    assert "and 28 more (the JSON report lists all)" in text  # 40 ids, 12 shown
