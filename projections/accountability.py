"""The figures of the accountability report (Art. 5(2)) that no single read model holds:
consent statistics, rights-request timeliness, breach timelines, transfers by mechanism,
lawful bases per activity, the identity policy explained, and the checkpoint anchoring it.

Pure functions over the views ``projections.queries`` returns (and the consent rows of the
store), so the figures can be recomputed by hand from the same rows — the tests do.
Formulas (docs/report.md, "Formulas"):

- days to answer: local calendar date of the answer minus local date of receipt, in the
  controller's zone (the dates Art. 12(3) periods count in); only ``fulfilled`` and
  ``refused`` requests are answered (a withdrawn request was never answered);
- median: the middle value of the sorted days, the mean of the two middle ones for an even
  count; p95: the nearest rank, the value at position ``ceil(0.95 * n)`` of the sorted
  days (1-based), so it is always a value that occurred;
- on time: answered on or before the legal deadline in force (``extended_due`` when the
  request was validly extended, else ``due``); the share is on time / answered with a
  deadline (requests awaiting identity have none).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from ledger.clock import parse_rfc3339
from ledger.encoding import b64
from projections.consents import EXPIRED, GIVEN, WITHDRAWN, latest, state_of
from projections.legal.rights import zone

ANSWERED = ("fulfilled", "refused")
#: Histogram bins of days to answer: a week each, the first five covering the one-month
#: period; one more bin per week past that up to the longest answer.
BIN_DAYS = 7
MIN_BINS = 5

IDENTITY_POLICIES = {
    "strict": "the one-month period runs from receipt of the request, whether or not the"
              " controller asked the subject to prove identity",
    "restart_on_identity": "when the controller asked for proof of identity, the period"
                           " runs from the day identity was verified (UK ICO practice)",
}

#: How an auditor checks the log the report was made from ({c}: the controller; {n}: the
#: checkpoint's size). The live check proves every later checkpoint extends this one.
VERIFY_COMMANDS = (
    "curl -H 'Authorization: Bearer KEY' URL/v1/controllers/{c}/evidence -o evidence-{c}.zip",
    "auditledger verify evidence-{c}.zip",
    "auditledger verify --url URL --api-key KEY --controller {c}",
    "curl -H 'Authorization: Bearer KEY' 'URL/v1/controllers/{c}/proofs/consistency?from={n}'",
)


def in_period(at: str | None, start: datetime | None, end: datetime | None) -> bool:
    """``start <= at < end`` (either bound open when None); an unknown time is outside a
    bounded period."""
    if start is None and end is None:
        return True
    if not at:
        return False
    t = parse_rfc3339(at)
    return (start is None or t >= start) and (end is None or t < end)


def local_date(at: str, tz: str) -> date:
    return parse_rfc3339(at).astimezone(zone(tz)).date()


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def p95(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile: the value at rank ``ceil(0.95 n)`` (1-based)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.95 * len(ordered)) - 1])


# -- rights requests -----------------------------------------------------------------------


def answer_days(r: dict[str, Any], tz: str) -> int | None:
    """Calendar days from receipt to answer in the controller's zone, or None (unanswered)."""
    if r["status"] not in ANSWERED or not r.get("closed_at") or not r.get("received_at"):
        return None
    return (local_date(r["closed_at"], tz) - local_date(r["received_at"], tz)).days


def answered_on_time(r: dict[str, Any], tz: str) -> bool | None:
    """True / False for an answered request with a deadline, else None."""
    legal = r.get("extended_due") if r.get("extended") else r.get("due")
    if answer_days(r, tz) is None or not legal:
        return None
    return local_date(r["closed_at"], tz) <= date.fromisoformat(legal)


def _timeliness_of(rows: list[dict[str, Any]], tz: str) -> dict[str, Any]:
    days = [d for d in (answer_days(r, tz) for r in rows) if d is not None]
    judged = [v for v in (answered_on_time(r, tz) for r in rows) if v is not None]
    return {
        "received": len(rows),
        "answered": len(days),
        "open": sum(1 for r in rows if r["status"] not in (*ANSWERED, "withdrawn")),
        "withdrawn": sum(1 for r in rows if r["status"] == "withdrawn"),
        "median_days": median(days),
        "p95_days": p95(days),
        "on_time": sum(judged),
        "on_time_share": (sum(judged) / len(judged)) if judged else None,
        "extended": sum(1 for r in rows if r.get("extended")),
        "extension_invalid": sum(1 for r in rows if r.get("extension_valid") is False),
    }


def histogram(days: Iterable[int]) -> list[dict[str, int]]:
    """Weekly bins ``[from, to]`` (inclusive days) with their counts."""
    values = list(days)
    bins = max(MIN_BINS, (max(values) // BIN_DAYS + 1) if values else 0)
    counts = Counter(min(v // BIN_DAYS, bins - 1) for v in values)
    return [{"days_from": i * BIN_DAYS, "days_to": i * BIN_DAYS + BIN_DAYS - 1,
             "count": counts.get(i, 0)} for i in range(bins)]


def timeliness(requests: list[dict[str, Any]], tz: str) -> dict[str, Any]:
    """Counts, median, p95 and on-time share overall and by right, and the histogram."""
    by_right: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in requests:
        by_right[str(r.get("right"))].append(r)
    out = _timeliness_of(requests, tz)
    out["by_right"] = [{"right": k, **_timeliness_of(v, tz)} for k, v in sorted(by_right.items())]
    out["histogram"] = histogram(d for d in (answer_days(r, tz) for r in requests)
                                 if d is not None)
    out["requests"] = [{"request_id": r["request_id"], "right": r.get("right"),
                        "status": r["status"], "received_at": r.get("received_at"),
                        "closed_at": r.get("closed_at"), "days_to_answer": answer_days(r, tz),
                        "on_time": answered_on_time(r, tz), "extended": r.get("extended")}
                       for r in requests]
    return out


# -- consents ------------------------------------------------------------------------------


def consent_states(rows: Sequence[tuple[Any, ...]], as_of: str) -> dict[str, Counter[str]]:
    """Per purpose, how many subjects are in each state at ``as_of`` (``rows`` as
    ``ReadModelStore.controller_consent_rows``, sorted by subject)."""
    by_subject: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for subject, *row in rows:
        by_subject[subject].append(tuple(row))
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for subject_rows in by_subject.values():
        for purpose in {r[0] for r in subject_rows}:
            row = latest(subject_rows, purpose, as_of)  # type: ignore[arg-type]
            state = state_of(row, as_of)  # type: ignore[arg-type]
            if row is not None:
                out[purpose][state] += 1
    return out


def overview(rows: Sequence[tuple[Any, ...]], as_of: str) -> list[dict[str, Any]]:
    """One line per purpose: subjects with consent in force, withdrawn, expired at
    ``as_of``, and the events up to then."""
    states = consent_states(rows, as_of)
    events: dict[str, Counter[str]] = defaultdict(Counter)
    for _subject, purpose, at, _seq, _eid, action, _doc in rows:
        if at <= as_of:
            events[purpose][action] += 1
    return [{"purpose": p, "in_force": states[p][GIVEN], "withdrawn": states[p][WITHDRAWN],
             "expired": states[p][EXPIRED], "subjects": sum(states[p].values()),
             "given_events": events[p][GIVEN], "withdrawn_events": events[p][WITHDRAWN]}
            for p in sorted(set(states) | set(events))]


def consent_stats(rows: Sequence[tuple[Any, ...]], as_of: str, start: datetime | None,
                  end: datetime | None, tz: str) -> dict[str, Any]:
    """Consents given and withdrawn in the period (one per purpose of an event), by
    purpose, method and local month, and the overview at ``as_of``."""
    period = [r for r in rows if in_period(r[2], start, end)]
    by_purpose: dict[str, Counter[str]] = defaultdict(Counter)
    by_method: dict[str, Counter[str]] = defaultdict(Counter)
    by_month: dict[str, Counter[str]] = defaultdict(Counter)
    for _subject, purpose, at, _seq, _eid, action, doc in period:
        by_purpose[purpose][action] += 1
        by_method[str(doc.get("method") or "not recorded")][action] += 1
        by_month[local_date(at, tz).strftime("%Y-%m")][action] += 1
    return {
        "given": sum(1 for r in period if r[5] == GIVEN),
        "withdrawn": sum(1 for r in period if r[5] == WITHDRAWN),
        "active": sum(p["in_force"] for p in overview(rows, as_of)),
        "by_purpose": [{"purpose": k, "given": v[GIVEN], "withdrawn": v[WITHDRAWN]}
                       for k, v in sorted(by_purpose.items())],
        "by_method": [{"method": k, "given": v[GIVEN], "withdrawn": v[WITHDRAWN]}
                      for k, v in sorted(by_method.items())],
        "over_time": [{"month": k, "given": v[GIVEN], "withdrawn": v[WITHDRAWN]}
                      for k, v in sorted(by_month.items())],
        "overview": overview(rows, as_of),
    }


# -- breaches, transfers, bases ------------------------------------------------------------


def breach_timeline(b: dict[str, Any], assessed_at: str | None, now: datetime
                    ) -> dict[str, Any]:
    """The milestones of one breach and, while the authority is still to be told, the hours
    left of its 72 (negative once past)."""
    public = b.get("public_communication") or {}
    hours_left = None
    owed = (b.get("obligations") or {}).get("notify_authority")
    if b.get("authority_due") and owed and not b.get("notified_at"):
        hours_left = round((parse_rfc3339(b["authority_due"]) - now).total_seconds() / 3600, 1)
    to_notify = None
    if b.get("aware_at") and b.get("notified_at"):
        to_notify = round((parse_rfc3339(b["notified_at"]) - parse_rfc3339(b["aware_at"]))
                          .total_seconds() / 3600, 1)
    return {"breach_id": b["breach_id"], "status": b["status"], "risk": b.get("risk"),
            "detected_at": b.get("detected_at"), "aware_at": b.get("aware_at"),
            "assessed_at": assessed_at, "notified_at": b.get("notified_at"),
            "communicated_at": b.get("subjects_communicated_at") or public.get(
                "communicated_at"),
            "authority_due": b.get("authority_due"), "hours_left": hours_left,
            "hours_to_notify": to_notify}


def transfers_by_mechanism(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in ts:
        groups[(str(t.get("mechanism")), str(t.get("destination_country")))].append(t)
    return [{"mechanism": m, "destination_country": c, "transfers": len(v),
             "valid": sum(1 for t in v if t.get("valid")),
             "invalid": sum(1 for t in v if not t.get("valid")),
             "reasons": sorted({str(t.get("reason")) for t in v if not t.get("valid")})}
            for (m, c), v in sorted(groups.items())]


def recipients_with_transfers(recipients: list[dict[str, Any]], ts: list[dict[str, Any]]
                              ) -> list[dict[str, Any]]:
    by_rec: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in ts:
        by_rec[str(t.get("recipient_id"))].append(t)
    out = []
    for r in recipients:
        mine = by_rec.get(str(r.get("recipient_id")), [])
        out.append({**r, "transfers": len(mine),
                    "transfer_mechanisms": sorted({str(t.get("mechanism")) for t in mine}),
                    "transfers_invalid": sum(1 for t in mine if not t.get("valid"))})
    return out


def lawful_bases(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"activity_id": a["activity_id"], "name": a.get("name"), "status": a.get("status"),
             "purposes": a.get("purposes"), "lawful_basis": a.get("lawful_basis"),
             "special_category_condition": a.get("special_category_condition")}
            for a in activities]


def identity(policy: str) -> dict[str, str]:
    return {"policy": policy, "meaning": IDENTITY_POLICIES.get(policy, "not documented")}


def anchor(controller: str, checkpoint: dict[str, Any] | None, events: int) -> dict[str, Any]:
    """The signed checkpoint the report was made against, and how to check it;
    ``covers_report``: the checkpoint holds at least the ``events`` the read models
    applied."""
    size = str((checkpoint or {}).get("size", "SIZE"))
    return {"checkpoint": checkpoint,
            "covers_report": None if checkpoint is None else checkpoint["size"] >= events,
            "verify": [c.replace("{c}", controller).replace("{n}", size)
                       for c in VERIFY_COMMANDS]}


def checkpoint_doc(cp: Any, log_key: str | None) -> dict[str, Any] | None:
    """A ``ledger.log.base.StoredCheckpoint`` as the report's anchor: the fields of ``GET
    …/checkpoint`` (size, base64 root, created_at, the signed note, the log's verifier
    key)."""
    if cp is None:
        return None
    return {"controller": cp.controller, "size": cp.size, "root": b64(cp.root),
            "created_at": cp.created_at, "note": cp.note, "log_key": log_key}
