"""Consent history per subject and purpose (GDPR Arts. 6(1)(a), 7), and its state at any
instant.

The history is append-only (``consents`` table): the state of a subject for a purpose at
``as_of`` is the latest row at or before ``as_of`` — ``given`` (unless its ``expires_at``
has passed: ``expired``), ``withdrawn``, or ``none``. Ordering is by (occurred_at, seq),
so two events at the same instant are ordered as the log recorded them.

Findings decided here, when the event is applied: ``withdrawal_without_consent`` (a
withdrawal with no consent in force for that purpose) and ``consent_without_evidence``
(Art. 7(1): the controller must be able to demonstrate consent).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from projections.batch import Batch, ConsentRow, Event, present, utc

GIVEN, WITHDRAWN, EXPIRED, NONE = "given", "withdrawn", "expired", "none"


def latest(
    rows: Iterable[ConsentRow], purpose: str, at: str, activity_id: str | None = None
) -> ConsentRow | None:
    """The row deciding the state of ``purpose`` at ``at`` (UTC text), or None. With
    ``activity_id``, rows for that activity count whatever their purpose."""
    best: ConsentRow | None = None
    for row in rows:  # runs for every consent-checked event: no tuples made per row
        row_at = row[1]
        if row_at > at:
            continue
        if row[0] != purpose and (activity_id is None or row[5].get("activity_id") != activity_id):
            continue
        if best is None or row_at > best[1] or (row_at == best[1] and row[2] > best[2]):
            best = row
    return best


def state_of(row: ConsentRow | None, at: str) -> str:
    if row is None:
        return NONE
    if row[4] == WITHDRAWN:
        return WITHDRAWN
    expires = row[5].get("expires_at")
    if expires is not None and expires <= at:
        return EXPIRED
    return GIVEN


def _given(b: Batch, ev: Event) -> None:
    if ev.subject is None:  # the envelope schema requires one; kept defensive
        return
    # Stored without nulls (readers use ``.get``): half the bytes of a consent row.
    doc = present({}, ev.data, ("method", "notice_version", "notice_hash", "evidence_ref",
                                "activity_id"))
    if ev.data.get("expires_at"):
        doc["expires_at"] = utc(ev.data["expires_at"])
    b.add_consent(ev, ev.data["purposes"], GIVEN, doc)
    if not ev.data.get("evidence_ref") and not ev.data.get("notice_hash"):
        b.add_finding(
            ev, "consent_without_evidence", "low",
            "consent recorded without an evidence reference or notice hash (Art. 7(1))",
            [ev.event_id],
        )


def _withdrawn(b: Batch, ev: Event) -> None:
    if ev.subject is None:
        return
    rows = b.consent_history(ev.controller, ev.subject)
    doc = present({}, ev.data, ("method", "evidence_ref", "activity_id"))
    for purpose in ev.data["purposes"]:
        row = latest(rows, purpose, ev.at)
        if state_of(row, ev.at) != GIVEN:
            evidence = [ev.event_id] if row is None else [row[3], ev.event_id]
            b.add_finding(
                ev, "withdrawal_without_consent", "low",
                f"consent for purpose {purpose!r} withdrawn while none was in force"
                f" ({state_of(row, ev.at)})",
                evidence,
            )
        b.add_consent(ev, [purpose], WITHDRAWN, doc)  # the next purpose's check sees it


HANDLERS = {"consent.given": _given, "consent.withdrawn": _withdrawn}


def view(rows: list[ConsentRow], as_of: str) -> list[dict[str, Any]]:
    """The state of every purpose the subject ever consented to, at ``as_of`` (UTC text)."""
    out = []
    for purpose in sorted({r[0] for r in rows}):
        row = latest(rows, purpose, as_of)
        state = state_of(row, as_of)
        history = [r for r in rows if r[0] == purpose and r[1] <= as_of]
        history.sort(key=lambda r: (r[1], r[2]))
        given = next((r for r in reversed(history) if r[4] == GIVEN), None)
        withdrawn = row if row is not None and row[4] == WITHDRAWN else None
        out.append({
            "purpose": purpose,
            "state": state,
            "given_at": given[1] if given else None,
            "withdrawn_at": withdrawn[1] if withdrawn else None,
            "expires_at": given[5].get("expires_at") if given else None,
            "method": row[5].get("method") if row else None,
            "notice_version": given[5].get("notice_version") if given else None,
            "evidence_ref": given[5].get("evidence_ref") if given else None,
            "withdrawal_method": withdrawn[5].get("method") if withdrawn else None,
            "evidence": [r[3] for r in history],
        })
    return out
