"""The report as sections of rows of text: what every human rendering (HTML, XLSX, PDF)
shows, in one place, so the three say the same thing in the same words.

Each ``Section`` has a title, an XLSX sheet name (≤ 31 characters), a note saying what the
figures mean, column headers, rows of strings (``text``: local time beside UTC, lists as
lists, "not yet assessed" for a missing assessment), and optionally the chart drawn beside
it (``charts``). The JSON document stays the machine-readable truth; these are views of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from projections.report import charts
from projections.report import text as t

BASES = {
    "A6-1-a": "Art. 6(1)(a) consent", "A6-1-b": "Art. 6(1)(b) contract",
    "A6-1-c": "Art. 6(1)(c) legal obligation", "A6-1-d": "Art. 6(1)(d) vital interests",
    "A6-1-e": "Art. 6(1)(e) public task", "A6-1-f": "Art. 6(1)(f) legitimate interests",
}


@dataclass
class Section:
    title: str
    sheet: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    chart: Callable[[dict[str, Any]], str] | None = None
    #: key / value sections (summary, anchor) are drawn as two columns without a header
    pairs: bool = False
    extra: list[str] = field(default_factory=list)


def basis(b: Any) -> str:
    if isinstance(b, list):
        return ", ".join(basis(x) for x in b)
    return BASES.get(str(b), t.value(b)) if b else t.NOT_RECORDED


def title(doc: dict[str, Any]) -> str:
    c = doc["controller"]
    return f"Accountability report — {c.get('name') or c['controller']}"


def period(doc: dict[str, Any]) -> str:
    p, tz = doc.get("period") or {}, doc.get("timezone", "UTC")
    if not p.get("from") and not p.get("to"):
        return "all events"
    return (f"from {t.when(p.get('from'), tz, 'the first event')}"
            f" to {t.when(p.get('to'), tz, 'now')} (end excluded)")


def summary(doc: dict[str, Any]) -> Section:
    c, tz = doc["controller"], doc.get("timezone", "UTC")
    tl, con = doc["timeliness"], doc["consent"]
    rows = [
        ["Controller", f"{t.value(c.get('name'))} ({c['controller']})"],
        ["Country / time zone", f"{t.value(c.get('country'))} / {tz}"],
        ["Lead authority", t.value(c.get("lead_authority"))],
        ["Contact", t.value(c.get("contact"))],
        ["Period", period(doc)],
        ["Generated", t.when(doc["generated_at"], tz)],
        ["Events in the ledger", str(c.get("events", 0))],
        ["Identity policy in force", f"{doc['identity']['policy']}: "
                                     f"{doc['identity']['meaning']}"],
        ["Findings", f"{len(doc['findings'])} ("
                     + ", ".join(f"{sum(1 for f in doc['findings'] if f['severity'] == s)} {s}"
                                 for s in ("high", "medium", "low")) + ")"],
        ["Record of processing", f"{len(doc['ropa']['activities'])} activities, "
                                 + ("complete" if doc["ropa"]["complete"] else "incomplete")],
        ["Consents in the period", f"{con['given']} given, {con['withdrawn']} withdrawn; "
                                   f"{con['active']} in force now"],
        ["Rights requests received", f"{tl['received']} ({tl['answered']} answered, "
                                     f"{tl['open']} open)"],
        ["Days to answer", f"median {t.days(tl['median_days'])}, "
                           f"95th percentile {t.days(tl['p95_days'])}"],
        ["Answered on time", t.share(tl["on_time_share"])],
        ["Breaches", str(len(doc["breaches"]))],
        ["Transfers", f"{doc['transfers']['total']} "
                      f"({len(doc['transfers']['invalid'])} without a valid mechanism)"],
    ]
    return Section("Summary", "Summary", ["Item", "Value"], rows, pairs=True)


#: Evidence ids shown per finding; the JSON report lists every one.
EVIDENCE_SHOWN = 12


def evidence(ids: list[str]) -> str:
    if len(ids) <= EVIDENCE_SHOWN:
        return t.value(ids, "none")
    return (t.value(ids[:EVIDENCE_SHOWN])
            + f" and {len(ids) - EVIDENCE_SHOWN} more (the JSON report lists all)")


def findings(doc: dict[str, Any]) -> Section:
    rows = [[f["severity"], f["code"], f["detail"], evidence(f["evidence"])]
            for f in doc["findings"]]
    return Section("Findings", "Findings", ["Severity", "Code", "What", "Evidence (event ids)"],
                   rows, "Every rule the ledger holds broken, with the events that prove it.")


def ropa(doc: dict[str, Any]) -> Section:
    tz = doc.get("timezone", "UTC")
    rows = [[a["activity_id"], t.value(a.get("name")), t.value(a.get("status")),
             t.value(a.get("purposes")), basis(a.get("lawful_basis")),
             t.value(a.get("special_category_condition"), "none"),
             t.value(a.get("data_categories")), t.value(a.get("subject_categories")),
             t.value(a.get("recipients"), "none"), t.value(a.get("transfers"), "none"),
             t.value(a.get("retention")), t.value(a.get("security_measures")),
             t.value(a.get("dpia_ref"), "none"), t.when(a.get("declared_at"), tz),
             t.value(a.get("complete")), t.value(a.get("missing"), "nothing")]
            for a in doc["ropa"]["activities"]]
    return Section("Record of processing (Art. 30)", "Record of processing",
                   ["Activity", "Name", "Status", "Purposes", "Lawful basis",
                    "Art. 9(2) condition", "Data categories", "Data subjects", "Recipients",
                    "Transfers", "Retention", "Security measures", "DPIA", "Declared",
                    "Complete", "Missing"], rows,
                   "One row per processing activity, as declared and amended in the ledger.")


def lawful_bases(doc: dict[str, Any]) -> Section:
    rows = [[b["activity_id"], t.value(b.get("name")), t.value(b.get("status")),
             basis(b.get("lawful_basis")), t.value(b.get("special_category_condition"), "none"),
             t.value(b.get("purposes"))] for b in doc["lawful_bases"]]
    return Section("Lawful bases per activity", "Lawful bases",
                   ["Activity", "Name", "Status", "Lawful basis (Art. 6(1))",
                    "Art. 9(2) condition", "Purposes"], rows)


def consent(doc: dict[str, Any]) -> list[Section]:
    c = doc["consent"]
    over = Section("Consent overview per purpose", "Consent overview",
                   ["Purpose", "In force", "Withdrawn", "Expired", "Subjects"],
                   [[p["purpose"], str(p["in_force"]), str(p["withdrawn"]), str(p["expired"]),
                     str(p["subjects"])] for p in c["overview"]],
                   "Subjects whose latest consent for the purpose is in force, withdrawn or"
                   " expired at the time the report was generated.")
    period_rows = ([["purpose", p["purpose"], str(p["given"]), str(p["withdrawn"])]
                    for p in c["by_purpose"]]
                   + [["method", m["method"], str(m["given"]), str(m["withdrawn"])]
                      for m in c["by_method"]]
                   + [["month", m["month"], str(m["given"]), str(m["withdrawn"])]
                      for m in c["over_time"]])
    stats = Section("Consents given and withdrawn in the period", "Consent statistics",
                    ["By", "Value", "Given", "Withdrawn"], period_rows,
                    f"{c['given']} given and {c['withdrawn']} withdrawn in the period (one per"
                    f" purpose of each event); {c['active']} in force now.", charts.consents_svg)
    return [over, stats]


def recipients(doc: dict[str, Any]) -> list[Section]:
    rec = Section("Recipients", "Recipients",
                  ["Recipient", "Name", "Kind", "Country", "Safeguard", "DPA date", "Status",
                   "Transfers", "Mechanisms used", "Without valid mechanism"],
                  [[r["recipient_id"], t.value(r.get("name")), t.value(r.get("kind")),
                    t.value(r.get("country")), t.value(r.get("safeguard")),
                    t.value(r.get("dpa_date")), t.value(r.get("status")), str(r["transfers"]),
                    t.value(r["transfer_mechanisms"], "none"), str(r["transfers_invalid"])]
                   for r in doc["recipients"]])
    tr = Section("Transfers to third countries (Chapter V)", "Transfers",
                 ["Mechanism", "Destination", "Transfers", "Valid", "Invalid", "Why invalid"],
                 [[m["mechanism"], m["destination_country"], str(m["transfers"]),
                   str(m["valid"]), str(m["invalid"]), t.value(m["reasons"], "")]
                  for m in doc["transfers"]["by_mechanism"]],
                 "Each transfer judged by the law on its day (adequacy decisions, DPF, SCCs).")
    return [rec, tr]


def rights(doc: dict[str, Any]) -> list[Section]:
    tl, tz = doc["timeliness"], doc.get("timezone", "UTC")
    rows = [["all", str(tl["received"]), str(tl["answered"]), str(tl["open"]),
             t.days(tl["median_days"]), t.days(tl["p95_days"]), t.share(tl["on_time_share"]),
             str(tl["extended"])]]
    rows += [[r["right"], str(r["received"]), str(r["answered"]), str(r["open"]),
              t.days(r["median_days"]), t.days(r["p95_days"]), t.share(r["on_time_share"]),
              str(r["extended"])] for r in tl["by_right"]]
    summary_ = Section("Rights requests: timeliness (Art. 12(3))", "Rights timeliness",
                       ["Right", "Received", "Answered", "Open", "Median", "95th percentile",
                        "On time", "Extended"], rows,
                       "Days from receipt to answer in the controller's calendar; on time ="
                       " answered by the deadline in force (extended when validly extended).",
                       charts.timeliness_svg)
    by_id = {r["request_id"]: r for r in doc["rights_requests"]}
    reqs = Section("Rights requests", "Rights requests",
                   ["Request", "Right", "Status", "Received", "Answered", "Days", "Due",
                    "Extended due", "Binding due", "On time", "Extended", "Personal data"],
                   [[q["request_id"], t.value(q["right"]), t.value(q["status"]),
                     t.when(q["received_at"], tz), t.when(q["closed_at"], tz, "not answered"),
                     t.value(q["days_to_answer"], ""), t.value(by_id[q["request_id"]]["due"]),
                     t.value(by_id[q["request_id"]]["extended_due"]),
                     t.value(by_id[q["request_id"]]["binding_due"]),
                     t.value(q["on_time"], ""), t.value(q["extended"]),
                     t.personal_data(by_id[q["request_id"]].get("personal_data"), tz)]
                    for q in tl["requests"]])
    return [summary_, reqs]


def breaches(doc: dict[str, Any]) -> Section:
    tz = doc.get("timezone", "UTC")
    views = {b["breach_id"]: b for b in doc["breaches"]}
    rows = [[b["breach_id"], t.value(b["status"]), t.risk(b.get("risk")),
             t.when(b["detected_at"], tz), t.when(b["aware_at"], tz),
             t.when(b["assessed_at"], tz, t.NOT_ASSESSED),
             t.when(b["notified_at"], tz, "not notified"),
             t.when(b["communicated_at"], tz, "not communicated"),
             t.when(b["authority_due"], tz, ""), t.hours_left(b["hours_left"]),
             t.obligations(views[b["breach_id"]].get("obligations")
                           if b.get("risk") else None),
             t.personal_data(views[b["breach_id"]].get("personal_data"), tz)]
            for b in doc["breach_timelines"]]
    return Section("Breach register (Art. 33(5))", "Breaches",
                   ["Breach", "Status", "Risk", "Detected", "Aware", "Assessed",
                    "Authority notified", "Subjects told", "Authority due (72 h)", "Clock",
                    "Duties", "Personal data"], rows,
                   "Each breach's timeline; the 72-hour clock runs from awareness.",
                   charts.breach_timelines_svg)


def deadlines(doc: dict[str, Any]) -> Section:
    tz = doc.get("timezone", "UTC")
    return Section("Deadlines still running", "Deadlines",
                   ["Due", "Kind", "Case", "Deadline", "Status", "Overdue"],
                   [[t.when(d["due_at"], tz), d["kind"].replace("_", " "), str(d["id"]),
                     d["deadline"].replace("_", " "), t.value(d["status"]),
                     t.value(d["overdue"])] for d in doc["deadlines"]])


def anchor(doc: dict[str, Any]) -> Section:
    a, tz = doc["anchor"], doc.get("timezone", "UTC")
    cp = a.get("checkpoint")
    rows = ([["Log size", str(cp.get("size"))], ["Root", t.value(cp.get("root"))],
             ["Signed", t.when(cp.get("created_at"), tz)],
             ["Holds every event reported", t.value(a.get("covers_report"))]] if cp else
            [["Checkpoint", "none given: check the log with the commands below"]])
    rows += [[f"Check {i}", c] for i, c in enumerate(a["verify"], 1)]
    s = Section("Signed checkpoint anchoring this report", "Anchor", ["Item", "Value"], rows,
                "The report was made from the read models of the log up to this signed tree"
                " head; anyone with the log key can check that the log holds it.", pairs=True)
    if cp and cp.get("note"):
        s.extra.append(str(cp["note"]))
    return s


def sections(doc: dict[str, Any]) -> list[Section]:
    return [summary(doc), findings(doc), ropa(doc), lawful_bases(doc), *consent(doc),
            *recipients(doc), *rights(doc), breaches(doc), deadlines(doc), anchor(doc)]
