"""What a reader is told of sealed personal data, decided at read time (API, report,
evidence bundle).

Events keep personal details only in ``sealed`` (ciphertext under a subject's data key,
ledger/sealing.py); read models never hold them. The API opens a sealed field when it is
asked, with the key store beside the ledger, and only for an admin key (the controller's
DPO): an auditor learns that the data exist (``sealed``) but not what they say, and once
the subject's keys are destroyed everyone reads ``erased`` with the date.

States (``ledger.sealing.view``): ``absent`` (the event keeps no personal data),
``sealed`` (kept, readable by an admin), ``erased`` (keys destroyed: ``erased_at``),
``unreadable`` (no such key, or it does not open: a damaged or mixed-up key store).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledger.apikeys import ApiKey
from ledger.keystore import KeyStore
from ledger.log.base import Log
from ledger.sealing import view

#: The states of one case, worst first: one unreadable event makes the case unreadable,
#: a readable one makes it sealed; erased only when every sealed event is erased.
_CASE_ORDER = ("unreadable", "sealed", "erased")


def may_open(key: ApiKey) -> bool:
    """Plaintext is for the admin key only (DESIGN.md roles: the DPO's)."""
    return key.role == "admin"


def event_view(keys: KeyStore, env: Mapping[str, Any], key: ApiKey) -> dict[str, Any]:
    """One event's sealed field for this caller: ``fields`` only for an admin."""
    return view(env, keys, open_=may_open(key))


def case_states(log: Log, keys: KeyStore, controller: str,
                rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the case rows (rights request, breach), each with ``personal_data`` from
    its ``evidence`` events: ``{"state", "events", "erased_at"}``, ``events`` the ids of the
    events that keep sealed data (an admin opens them with
    ``GET …/events/{event_id}/sealed``). One look-up for the whole page."""
    rows = [dict(r) for r in rows]  # a read model's rows may be cached: never mutate
    ids = sorted({e for r in rows for e in r.get("evidence") or ()})
    stored = log.lookup(controller, ids) if ids else {}
    views: dict[str, dict[str, Any]] = {}
    for eid, ev in stored.items():
        env = ev.envelope()
        if "sealed" in env:
            views[eid] = view(env, keys)
    for row in rows:
        mine = [(e, views[e]) for e in row.get("evidence") or () if e in views]
        row["personal_data"] = case_state(mine)
    return rows


def case_state(views: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    if not views:
        return {"state": "absent", "events": [], "erased_at": None}
    states = {v["state"] for _, v in views}
    state = next(s for s in _CASE_ORDER if s in states)
    erased = [v["erased_at"] for _, v in views if v["state"] == "erased"]
    return {"state": state, "events": [e for e, _ in views],
            "erased_at": max(erased) if state == "erased" else None}


def with_personal_data(doc: dict[str, Any], log: Log, keys: KeyStore) -> dict[str, Any]:
    """The accountability report ``doc`` (``projections.queries.report``) with
    ``personal_data`` on its rights requests and breaches, so every rendering and the
    evidence bundle say "sealed (kept)" or "erased" and when — never the plaintext."""
    controller = doc["controller"]["controller"]
    for name in ("rights_requests", "breaches"):
        doc[name] = case_states(log, keys, controller, doc.get(name) or [])
    return doc
