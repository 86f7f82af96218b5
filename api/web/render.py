"""Jinja2 for the auditor pages: one environment, the filters that turn read-model values
into text a person reads, and ``render`` (a page with the signed-in user in context).

Rules the filters apply everywhere (docs/web.md, "Made for people"):
- an instant is shown in the controller's time zone beside UTC, inside ``<time>``;
- a list is words joined by commas, a flag is "yes" / "no", a nested record is
  "key: value" pairs — never JSON or ``True``;
- a missing value is "not yet assessed" (or the caller's word for it).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from markupsafe import Markup, escape

from ledger.clock import parse_rfc3339

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MISSING = "not yet assessed"


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or len(value) < 20:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _missing(value: Any) -> bool:
    """None, empty, or a field the record does not have (Jinja's ``Undefined``)."""
    return value is None or isinstance(value, Undefined) or value == "" or value == []


def when(value: Any, tz: str | None = None, missing: str = MISSING) -> Markup:
    """``<time>`` with the local time of ``tz`` and, beside it, UTC. A date (YYYY-MM-DD)
    is shown as a date; anything unreadable as it is, escaped."""
    if _missing(value):
        return Markup('<span class="missing">{}</span>').format(missing)
    at = _instant(value)
    if at is None:
        try:
            d = date.fromisoformat(str(value))
        except ValueError:
            return escape(str(value))
        return Markup('<time datetime="{}">{}</time>').format(
            d.isoformat(), f"{d:%a} {d.day} {d:%b %Y}")
    z = zone(tz)
    local = at.astimezone(z)
    utc = at.astimezone(UTC)
    iso = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if z.key == "UTC":
        return Markup('<time datetime="{}">{} UTC</time>').format(
            iso, f"{utc.day} {utc:%b %Y, %H:%M}")
    return Markup('<time datetime="{}">{} {}<span class="utc"> · {} UTC</span></time>'
                  ).format(iso, f"{local.day} {local:%b %Y, %H:%M}", local.tzname(),
                           f"{utc:%H:%M}" if utc.date() == local.date()
                           else f"{utc.day} {utc:%b, %H:%M}")


INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")


def times_in(value: Any, tz: str | None = None) -> Markup:
    """Free text (a finding's detail) with every RFC 3339 instant in it shown as
    ``when`` shows one: in the controller's zone, UTC beside it."""
    out, last = Markup(""), 0
    raw = str(value)
    for m in INSTANT.finditer(raw):
        out += escape(raw[last:m.start()]) + when(m.group(0), tz)
        last = m.end()
    return out + escape(raw[last:])


def hours_left(due: Any, now: datetime, days: bool = False) -> str:
    """"31 h 12 min left" / "overdue by 5 h 03 min": what a breach clock shows; with
    ``days``, past 48 hours, "12 days 4 h left" (a rights request's month). The page's
    script (``static/countdown.js``) writes the same words every second."""
    at = _instant(due)
    if at is None:
        return MISSING
    secs = int((at - now).total_seconds())
    mins = abs(secs) // 60
    h, m = divmod(mins, 60)
    if days and h >= 48:
        d, h = divmod(h, 24)
        words = f"{d} days {h} h"
    else:
        words = f"{h} h {m:02d} min"
    return f"{words} left" if secs > 0 else f"overdue by {words}"


def text(value: Any, missing: str = MISSING) -> str:
    """Any read-model value as words: lists joined, flags yes/no, records as pairs."""
    if _missing(value):
        return missing
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if isinstance(value, list | tuple):
        return ", ".join(text(v, missing) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{humanize(k)}: {text(v, missing)}" for k, v in value.items()
                         if v is not None)
    return str(value)


def humanize(code: Any) -> str:
    """``notified_late_without_reasons`` → "notified late without reasons"."""
    if _missing(code):
        return MISSING
    return str(code).replace("_", " ").replace(".", " · ")


THRESHOLDS = {"48h": "48 hours after awareness", "60h": "60 hours after awareness",
              "71h": "71 hours after awareness", "overdue": "overdue",
              "due-7d": "7 days before the date", "due-1d": "1 day before the date",
              "legal_overdue": "legal date passed", "raised": "finding raised"}


def threshold(code: Any) -> str:
    """An alert threshold (docs/alerts.md) in words."""
    return THRESHOLDS.get(str(code), humanize(code))


def duration(value: Any) -> str:
    """An ISO 8601 retention duration (``P5Y``, ``P30D``) in words."""
    if not isinstance(value, str) or not value.startswith("P"):
        return text(value)
    units = {"Y": "year", "M": "month", "W": "week", "D": "day"}
    body, out, num = value[1:].split("T")[0], [], ""
    for ch in body:
        if ch.isdigit():
            num += ch
        elif ch in units and num:
            out.append(f"{num} {units[ch]}{'' if num == '1' else 's'}")
            num = ""
    return ", ".join(out) or value


def retention(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    parts = []
    for r in items:
        if isinstance(r, dict):
            parts.append(f"{duration(r.get('duration'))} from {r.get('starts') or MISSING}")
        else:
            parts.append(text(r))
    return "; ".join(parts) if parts else MISSING


def personal(pd: dict[str, Any] | None, tz: str = "UTC") -> str:
    """A case's or event's sealed personal data as the report says it (``sealed (kept)``,
    ``erased <when>``, ``none kept``): one wording for pages and report."""
    from projections.report.text import personal_data

    return personal_data(pd, tz)


env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(),
                  trim_blocks=True, lstrip_blocks=True)
env.filters.update(when=when, text=text, humanize=humanize, duration=duration,
                   retention=retention, threshold=threshold, times_in=times_in,
                   personal=personal)
env.globals.update(MISSING=MISSING, hours_left=hours_left)


def render(request: Request, template: str, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page ``template`` with ``request``, the signed-in ``user`` (or None) and the
    navigation in context."""
    from api.web import nav

    context.setdefault("user", getattr(request.state, "web_user", None))
    context.setdefault("controller", None)
    context.setdefault("tz", "UTC")
    context["request"] = request
    context["nav"] = nav.items()
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", **(headers or {})})
