"""Renderings of the accountability report (``queries.report``): JSON, HTML, CSV.

HTML is for people (an auditor opening an evidence bundle); CSV is the findings table, the
part spreadsheets are used for. Both are derived from the JSON document, never computed
separately, so the three always agree.
"""

from __future__ import annotations

import csv
import html
import io
from typing import Any

import orjson


def to_json(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def to_csv(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["code", "controller", "severity", "detail", "evidence"])
    for f in doc["findings"]:
        w.writerow([f["code"], f["controller"], f["severity"], f["detail"],
                    " ".join(f["evidence"])])
    return out.getvalue()


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return orjson.dumps(v).decode()
    return str(v)


def to_html(doc: dict[str, Any]) -> str:
    c = doc["controller"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Accountability report {html.escape(c['controller'])}</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}</style></head><body>",
        f"<h1>Accountability report — {html.escape(str(c.get('name') or c['controller']))}</h1>",
        f"<p>Controller {html.escape(c['controller'])}, generated {doc['generated_at']},"
        f" identity policy <b>{html.escape(doc['identity_policy'])}</b>,"
        f" {c['events']} events.</p>",
        f"<h2>Findings ({len(doc['findings'])})</h2>",
        _table(doc["findings"], ["severity", "code", "detail", "evidence"]),
        "<h2>Deadlines</h2>",
        _table(doc["deadlines"], ["due_at", "kind", "id", "deadline", "due", "status"]),
        "<h2>Record of processing (Art. 30)</h2>",
        _table(doc["ropa"]["activities"], ["activity_id", "name", "status", "purposes",
                                           "lawful_basis", "complete", "missing"]),
        "<h2>Recipients</h2>",
        _table(doc["recipients"], ["recipient_id", "name", "kind", "country", "status"]),
        "<h2>Rights requests</h2>",
        _table(doc["rights_requests"], ["request_id", "right", "status", "received_at", "due",
                                        "extended_due", "promised_due", "binding_due"]),
        "<h2>Breaches</h2>",
        _table(doc["breaches"], ["breach_id", "status", "aware_at", "authority_due", "risk",
                                 "notified_at", "obligations"]),
        f"<h2>Transfers</h2><p>{doc['transfers']['total']} transfers,"
        f" {len(doc['transfers']['invalid'])} without a valid mechanism.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


RENDERERS = {"json": to_json, "html": to_html, "csv": to_csv}
