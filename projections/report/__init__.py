"""Renderings of the accountability report (``projections.queries.report``): JSON, HTML,
CSV, XLSX and PDF, and the SVG charts they embed (``charts``).

Every rendering is derived from the JSON document, never computed separately, so they
always agree; the human ones (HTML, XLSX, PDF) show the same ``sections`` in the same
words (``text``). CSV is the findings table, the part spreadsheets are used for; the XLSX
holds every section, one sheet each. docs/report.md describes each section.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import orjson

from projections.report.html import to_html


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


def to_xlsx(doc: dict[str, Any]) -> bytes:
    from projections.report.xlsx import to_xlsx as render  # openpyxl loads on demand

    return render(doc)


def to_pdf(doc: dict[str, Any]) -> bytes:
    from projections.report.pdf import to_pdf as render  # fpdf2 loads on demand

    return render(doc)


#: The text renderings (the CLI prints them; ``--out`` writes them).
RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "json": to_json, "html": to_html, "csv": to_csv}
#: format -> (media type, file extension); ``render`` gives the bytes of any of them.
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("application/json", "json"),
    "html": ("text/html; charset=utf-8", "html"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
}


def render(doc: dict[str, Any], fmt: str) -> bytes:
    """The report in ``fmt`` (one of ``FORMATS``); KeyError for another."""
    if fmt == "xlsx":
        return to_xlsx(doc)
    if fmt == "pdf":
        return to_pdf(doc)
    return RENDERERS[fmt](doc).encode()


__all__ = ["FORMATS", "RENDERERS", "render", "to_csv", "to_html", "to_json", "to_pdf",
           "to_xlsx"]
