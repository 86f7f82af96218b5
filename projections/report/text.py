"""How the report says things to people, shared by the HTML, CSV, XLSX and PDF renderings:
times in the controller's zone beside UTC, breach clocks as hours left, lists as lists,
flags as yes / no, and a missing value as what it means ("not yet assessed"), never
``None``, ``True`` or JSON.
"""

from __future__ import annotations

from typing import Any

from ledger.clock import parse_rfc3339
from projections.legal.rights import zone

NOT_RECORDED = "not recorded"
NOT_ASSESSED = "not yet assessed"


def when(at: str | None, tz: str, missing: str = NOT_RECORDED) -> str:
    """``2026-11-13 19:09 CET (18:09 UTC)``; the UTC date too when it differs."""
    if not at:
        return missing
    try:
        t = parse_rfc3339(at)
    except ValueError:
        return str(at)
    local = t.astimezone(zone(tz))
    utc = t.astimezone(zone("UTC"))
    if tz == "UTC":
        return utc.strftime("%Y-%m-%d %H:%M UTC")
    same_day = local.date() == utc.date()
    return (local.strftime("%Y-%m-%d %H:%M %Z") + " ("
            + utc.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC") + ")")


def value(v: Any, missing: str = NOT_RECORDED) -> str:
    """Any read-model value as a phrase: lists joined, dicts as ``key: value; …``."""
    if v is None or v == "" or v == []:
        return missing
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return ", ".join(value(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {value(x)}" for k, x in v.items())
    return str(v)


def hours_left(h: float | None, missing: str = "") -> str:
    if h is None:
        return missing
    return f"{h:g} h left" if h >= 0 else f"overdue by {-h:g} h"


def share(x: float | None) -> str:
    return "no answered request" if x is None else f"{100 * x:.0f} %"


def days(x: float | None) -> str:
    return "no answered request" if x is None else f"{x:g} days"


def obligations(o: dict[str, Any] | None) -> str:
    """``{"record", "notify_authority", "communicate_subjects"}`` as the duties owed."""
    if not o:
        return NOT_ASSESSED
    names = {"record": "record", "notify_authority": "notify the authority",
             "communicate_subjects": "tell the subjects"}
    owed = [names.get(k, k) for k, v in o.items() if v]
    return ", ".join(owed) if owed else "none"


def risk(r: str | None) -> str:
    return NOT_ASSESSED if not r else str(r)


def personal_data(pd: dict[str, Any] | None, tz: str) -> str:
    """A case's sealed personal data (``ledger.personal``): ``sealed (kept)``, ``erased
    <when>``, ``none kept`` — never what they say. A report made without the key store
    (no ``personal_data``) says so rather than guessing."""
    if not pd:
        return "not checked"
    state = pd.get("state")
    if state == "sealed":
        return "sealed (kept)"
    if state == "erased":
        return f"erased {when(pd.get('erased_at'), tz)}"
    if state == "absent":
        return "none kept"
    return "unreadable (key store damaged)"
