"""Ledgers and generated event streams for the projection tests (and the benchmark).

``Scenario``: a ledger in a tmp dir with one controller and producer, to which tests append
events with chosen ``occurred_at``; ``generate(scenario, n, seed)`` appends a long mixed
stream exercising every projection.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.canonical import signed_and_unsigned
from ledger.clock import FixedClock, format_rfc3339
from ledger.envelope import complete, pseudonym
from ledger.log.base import Prepared
from ledger.service import Ledger, init_data_dir
from ledger.signing import DOMAIN, generate_key, public_key_text
from projections.runner import LogSource, ProjectionRunner
from projections.store import ReadModelStore

CID = "NO-921119224"
SUBJECT_KEY = b"k" * 32
LEDGER_NOW = datetime(2040, 1, 1, tzinfo=UTC)  # ledger clock: all test events are in its past


# -- ledgers and streams -----------------------------------------------------------------

def ts(dt: datetime) -> str:
    return format_rfc3339(dt)


class Scenario:
    """A ledger with controller ``CID`` (Norway, Europe/Oslo, answers promised within 30
    days) and producer ``app`` allowed everything."""

    def __init__(self, tmp: Path, controller_data: dict[str, Any] | None = None) -> None:
        cfg, _ = init_data_dir(tmp / "ledger")
        # The streams are history (2026 events, a 2040 clock): no lateness bound.
        self.cfg = replace(cfg, max_lateness_seconds=None)
        self.data_dir = tmp / "ledger"
        self.clock = FixedClock(LEDGER_NOW)
        self.ledger = Ledger(self.cfg, clock=self.clock, verifier_workers=0)
        self.ledger.register_controller(CID, controller_data or {
            "name": "Bedre Bedrift AS", "country": "NO", "timezone": "Europe/Oslo",
            "dpo_contact_role": "Personvernombud", "answer_within_days": 30,
        })
        self.key = generate_key()
        res = self.ledger.register_producer(CID, "app", public_key_text(self.key), ["*"])
        assert res.status == "accepted", res
        self.pending: list[dict[str, Any]] = []
        self.ids: list[str] = []

    @staticmethod
    def subject(name: str) -> str:
        return pseudonym(SUBJECT_KEY, name)

    def add(self, type_: str, data: dict[str, Any], at: datetime | str,
            subject: str | None = None) -> str:
        """Queue one event; returns its event_id. ``subject`` is a plain name."""
        env: dict[str, Any] = {"type": type_, "controller": CID, "data": data,
                               "occurred_at": at if isinstance(at, str) else ts(at)}
        if subject is not None:
            env["subject"] = self.subject(subject)
        signed = complete(env, self.key, "app")
        self.pending.append(signed)
        self.ids.append(signed["event_id"])
        return signed["event_id"]

    def append_raw(self, type_: str, data: dict[str, Any], at: str,
                   subject: str | None = None, controller: str = CID) -> str:
        """Write one signed event into the log *beneath* ingest (``Log.append`` of a
        ``Prepared``), as a log written before ingest refused some values would hold it:
        no schema or time check runs. Returns its event_id. Flushes queued events first,
        so log order is call order."""
        self.flush()
        env: dict[str, Any] = {"type": type_, "controller": controller, "data": data,
                               "occurred_at": at}
        if subject is not None:
            env["subject"] = self.subject(subject)
        signed = complete(env, self.key, "app")
        body, unsigned = signed_and_unsigned(signed)
        self.ledger.log.append([Prepared(
            signed["event_id"], controller, type_, "app", at, body,
            hashlib.sha256(DOMAIN + unsigned).digest())], ts(self.clock.now()))
        self.ids.append(signed["event_id"])
        return signed["event_id"]

    def flush(self) -> None:
        for i in range(0, len(self.pending), 500):
            results = self.ledger.submit(self.pending[i : i + 500])
            bad = [r for r in results if r.status != "accepted"]
            assert not bad, bad[:3]
        self.pending = []

    def source(self) -> LogSource:
        return LogSource(self.ledger.log)

    def project(self, store: ReadModelStore, batch_size: int = 500) -> ProjectionRunner:
        self.flush()
        runner = ProjectionRunner(self.source(), store, batch_size)
        runner.run_once()
        return runner

    def close(self) -> None:
        self.ledger.close()


RECIPIENTS = [
    {"recipient_id": "rcp-mailer", "name": "Mailer Inc", "kind": "processor", "country": "US",
     "safeguard": "dpf", "dpf_certified": True},
    {"recipient_id": "rcp-hosting", "name": "Nordic Hosting AS", "kind": "processor",
     "country": "SE", "dpa_date": "2024-01-10"},
    {"recipient_id": "rcp-support", "name": "Support Ltd", "kind": "processor",
     "country": "IN"},
]
ACTIVITIES = [
    {"activity_id": "newsletter", "name": "Newsletter", "purposes": ["marketing"],
     "lawful_basis": "A6-1-a", "data_categories": ["contact"], "subject_categories": ["customers"],
     "recipients": ["rcp-mailer"], "transfers": [{"recipient_id": "rcp-mailer",
     "destination_country": "US", "mechanism": "dpf"}],
     "retention": {"duration": "P2Y", "starts": "last contact"},
     "security_measures": ["encryption at rest"]},
    {"activity_id": "billing", "name": "Billing", "purposes": ["billing"],
     "lawful_basis": ["A6-1-b", "A6-1-c"], "data_categories": ["contact", "payment"],
     "subject_categories": ["customers"], "recipients": ["rcp-hosting"],
     "retention": [{"duration": "P5Y", "starts": "end of year"}],
     "security_measures": ["access control"]},
    {"activity_id": "support", "name": "Support", "purposes": ["support"],
     "lawful_basis": "A6-1-f", "data_categories": ["contact"], "subject_categories": ["customers"],
     "recipients": ["rcp-support"], "retention": {"duration": "P1Y", "starts": "case closed"},
     "security_measures": ["access control"]},
]
MECHANISMS = [("US", "dpf"), ("US", "adequacy"), ("IN", "scc_2021"), ("IN", "none"),
              ("IN", "derogation_49_1_b"), ("GB", "adequacy"), ("SE", "none"),
              ("US", "privacy_shield")]
RIGHTS = ["access", "erasure", "rectification", "portability", "objection"]


def generate(s: Scenario, n: int, seed: int = 7,
             start: datetime = datetime(2026, 1, 5, 8, tzinfo=UTC)) -> None:
    """Queue about ``n`` events of every kind, valid for the schemas, with occasional
    out-of-order ``occurred_at``; deterministic for a seed."""
    rnd = random.Random(seed)
    t = start
    for r in RECIPIENTS:
        s.add("recipient.registered", r, t)
    for a in ACTIVITIES:
        s.add("processing_activity.declared", a, t)
    subjects = [f"user{i}@example.org" for i in range(max(10, n // 8))]
    open_requests: list[str] = []
    open_breaches: list[str] = []
    count = len(RECIPIENTS) + len(ACTIVITIES)
    while count < n:
        t += timedelta(minutes=rnd.randint(1, 90))
        at = t - timedelta(hours=rnd.choice([0, 0, 0, 0, 3]))  # some arrive late
        who = rnd.choice(subjects)
        k = rnd.random()
        if k < 0.25:
            s.add("consent.given", {"purposes": [rnd.choice(["marketing", "profiling"])],
                                    "method": "web_banner", "notice_version": "v3",
                                    **({"evidence_ref": f"ev-{count}"} if rnd.random() < 0.9
                                       else {})}, at, who)
        elif k < 0.33:
            s.add("consent.withdrawn", {"purposes": ["marketing"], "method": "account_page"},
                  at, who)
        elif k < 0.34:  # erasure (crypto-shredding); later processing of `who` is a finding
            s.add("subject.erased", {"keys_destroyed_at": ts(at), "key_ids": [f"k-{count}"]},
                  at, who)
        elif k < 0.60:
            act = rnd.choice(["newsletter", "newsletter", "billing", "support", "ghost"])
            basis = {"newsletter": "A6-1-a", "billing": "A6-1-b", "support": "A6-1-f",
                     "ghost": "A6-1-a"}[act]
            s.add("processing.performed", {"activity_id": act, "basis": basis,
                                           "data_categories": ["contact"]}, at, who)
        elif k < 0.66:
            s.add("disclosure.made", {"recipient_id": rnd.choice(["rcp-hosting", "rcp-x"]),
                                      "data_categories": ["contact"], "subject_count": 3}, at)
        elif k < 0.72:
            cc, mech = rnd.choice(MECHANISMS)
            s.add("transfer.made", {"recipient_id": f"rcp-{cc.lower()}",
                                    "destination_country": cc, "mechanism": mech,
                                    "data_categories": ["contact"],
                                    **({"recurring": True} if rnd.random() < 0.2 else {})}, at)
        elif k < 0.84:
            if open_requests and rnd.random() < 0.6:
                rid = open_requests.pop(rnd.randrange(len(open_requests)))
                step = rnd.random()
                if step < 0.2:
                    s.add("rights_request.extended",
                          {"request_id": rid, "reason": "complex",
                           "subject_informed_at": ts(t + timedelta(days=rnd.choice([1, 40])))},
                          t)
                    open_requests.append(rid)
                elif step < 0.8:
                    s.add("rights_request.fulfilled",
                          {"request_id": rid,
                           "at": ts(t + timedelta(days=rnd.randint(0, 50)))}, t, who)
                else:
                    s.add("rights_request.refused",
                          {"request_id": rid, "at": ts(t), "reason": "manifestly unfounded",
                           "complaint_right_informed": rnd.random() < 0.5}, t, who)
            else:
                rid = f"req-{count}"
                s.add("rights_request.received",
                      {"request_id": rid, "right": rnd.choice(RIGHTS), "received_at": ts(at)},
                      at, who)
                open_requests.append(rid)
        else:
            if open_breaches and rnd.random() < 0.7:
                bid = open_breaches.pop(rnd.randrange(len(open_breaches)))
                step = rnd.random()
                if step < 0.4:
                    s.add("breach.assessed", {"breach_id": bid,
                                              "risk": rnd.choice(["unlikely", "risk", "high"]),
                                              "subjects_approx": 10, "records_approx": 20,
                                              "data_categories": ["contact"]}, t)
                    open_breaches.append(bid)
                elif step < 0.75:
                    late = rnd.random() < 0.4
                    data = {"breach_id": bid, "authority": "Datatilsynet",
                            "notified_at": ts(t + timedelta(hours=100 if late else 0)),
                            "phase": "initial"}
                    if late and rnd.random() < 0.5:
                        data["delay_reasons"] = "forensics took time"
                    s.add("breach.notified_authority", data, t)
                elif step < 0.85:
                    s.add("breach.communication_exempted",
                          {"breach_id": bid, "ground": "a", "reason": "encrypted"}, t)
                else:
                    s.add("breach.closed", {"breach_id": bid}, t)
            else:
                bid = f"br-{count}"
                s.add("breach.detected", {"breach_id": bid, "detected_at": ts(at),
                                          "description": "laptop lost"}, at)
                s.add("breach.aware", {"breach_id": bid,
                                       "aware_at": ts(at + timedelta(hours=2))}, at)
                count += 1
                open_breaches.append(bid)
        count += 1
