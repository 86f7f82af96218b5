"""``auditledger demo``: example controllers from the seed notices, as signed event streams.

Each file in ``examples/controllers/`` describes one controller (record of processing,
recipients, producers) and a stream recipe. The generator turns it into a believable,
deterministic-per-controller history over the last ``days`` days: consents and
withdrawals, processing, transfers, rights requests and breaches — including the
mistakes the seed notices suggest a good auditor would catch (a send after a withdrawal,
a late breach notification without reasons, an answer later than the promise).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ledger.apikeys import ApiKeyStore
from ledger.clock import Clock, SystemClock, format_rfc3339
from ledger.config import Config
from ledger.demo_people import People, Person
from ledger.envelope import complete, pseudonym
from ledger.paths import EXAMPLES
from ledger.sealing import seal_envelope
from ledger.service import Ledger, init_data_dir
from ledger.signing import public_key_text
from ledger.verify import LogSource, verify_source
from ledger.webforms import WebForms, producer_key, subject_key

#: (occurred_at, producer, envelope sans sig, fields to seal or None)
Partial = tuple[datetime, str, dict[str, Any], dict[str, Any] | None]


def controller_files() -> list[Path]:
    return sorted((EXAMPLES / "controllers").glob("*.json"))


class StreamBuilder:
    """Builds one controller's history; times are relative to ``now``."""

    def __init__(self, spec: dict[str, Any], skey: bytes, now: datetime) -> None:
        self.spec = spec
        self.cid = spec["controller"]["id"]
        self.skey = skey
        self.now = now
        self.rnd = random.Random(self.cid)
        self.stream = spec["stream"]
        self.start = now - timedelta(days=self.stream["days"])
        self.out: list[Partial] = []
        self.region = spec["controller"].get("country")
        self.people = People(self.cid, self.region)

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self.rnd.getrandbits(128), version=4))

    def add(self, at: datetime, producer: str, type_: str, data: dict[str, Any],
            subject: str | None = None, sealed: dict[str, Any] | None = None) -> None:
        """``sealed``: the personal details the event keeps, sealed under ``subject``'s
        data key when the envelope is completed (``load_controller``)."""
        env: dict[str, Any] = {"event_id": self._event_id(), "type": type_,
                               "controller": self.cid, "data": data}
        if subject:
            env["subject"] = subject
        self.out.append((min(at, self.now), producer, env, sealed))

    def _when(self, lo: float, hi: float) -> datetime:
        """A random instant between ``lo`` and ``hi`` days after the stream's start."""
        return self.start + timedelta(seconds=self.rnd.uniform(lo * 86400, hi * 86400))

    def person_psn(self, person: Person) -> str:
        """A person's subject reference: the pseudonym of their e-mail address."""
        return pseudonym(self.skey, person.email, self.region)

    def subject(self, i: int) -> str:
        return self.person_psn(self.people.get(f"subscriber-{i}"))

    def build(self) -> list[Partial]:
        self._register()
        self._consents_and_newsletter()
        self._daily_processing()
        self._transfers()
        self._rights_requests()
        self._breaches()
        self._odd_processing()
        self.out.sort(key=lambda p: p[0])
        return self.out

    def _register(self) -> None:
        t = self.start - timedelta(hours=1)
        for rcp in self.spec["recipients"]:
            self.add(t, "crm", "recipient.registered", rcp)
        for act in self.spec["activities"]:
            self.add(t, "crm", "processing_activity.declared", act)

    def _consents_and_newsletter(self) -> None:
        purpose = self.stream.get("consent_purpose")
        if not purpose:
            return
        days = self.stream["days"]
        consented: dict[int, datetime] = {}
        withdrawn: dict[int, datetime] = {}
        for i in range(self.stream["subjects"]):
            if self.rnd.random() < 0.8:
                at = self._when(0, days * 0.5)
                consented[i] = at
                self.add(at, "web", "consent.given", {
                    "purposes": [purpose], "activity_id": purpose,
                    "method": "web_form_double_opt_in",
                    "notice_version": "2024-05", "evidence_ref": f"optin/{i}"}, self.subject(i),
                    sealed=self._signup(i, purpose))
                if self.rnd.randrange(100) < self.stream["withdraw_share_percent"]:
                    wat = at + timedelta(days=self.rnd.uniform(1, days * 0.4))
                    withdrawn[i] = wat
                    self.add(wat, "web", "consent.withdrawn", {
                        "purposes": [purpose], "activity_id": purpose,
                        "method": "unsubscribe_link"}, self.subject(i))
        sends = self.stream.get("newsletter_sends", 0)
        for n in range(sends):
            at = self.start + timedelta(days=days * (n + 1) / (sends + 1), hours=9)
            for i, given in consented.items():
                if given < at and not (i in withdrawn and withdrawn[i] < at):
                    self.add(at, "crm", "processing.performed", {
                        "activity_id": purpose, "basis": "A6-1-a", "purpose": purpose,
                        "data_categories": ["name", "contact"], "operation": "send"},
                        self.subject(i))
        # The mistakes an auditor should catch: a send after a withdrawal, and one to
        # somebody who never consented.
        if not sends:
            return
        late = self.now - timedelta(days=2)
        if withdrawn:
            i = min(withdrawn)
            self.add(late, "crm", "processing.performed", {
                "activity_id": purpose, "basis": "A6-1-a", "purpose": purpose,
                "data_categories": ["contact"], "operation": "send"}, self.subject(i))
        never = next(i for i in range(self.stream["subjects"]) if i not in consented)
        self.add(late, "crm", "processing.performed", {
            "activity_id": purpose, "basis": "A6-1-a", "purpose": purpose,
            "data_categories": ["contact"], "operation": "send"}, self.subject(never))

    def _signup(self, i: int, purpose: str) -> dict[str, Any]:
        """What a sign-up form keeps: a newsletter's e-mail address; a candidate's name,
        e-mail and phone."""
        p = self.people.get(f"subscriber-{i}")
        if purpose == "newsletter":
            return {"email": p.email}
        return {"name": p.name, "email": p.email, "phone": p.phone}

    def _daily_processing(self) -> None:
        activities = [a for a in self.spec["activities"] if a["lawful_basis"] != "A6-1-a"]
        for day in range(self.stream["days"]):
            for _ in range(self.stream["processing_per_day"]):
                act = self.rnd.choice(activities)
                basis = act["lawful_basis"]
                self.add(self._when(day, day + 1), "crm", "processing.performed", {
                    "activity_id": act["activity_id"],
                    "basis": basis if isinstance(basis, str) else basis[0],
                    "data_categories": act["data_categories"][:2],
                    "subject_count": self.rnd.randint(1, 40)})

    def _transfers(self) -> None:
        recipients = {r["recipient_id"]: r for r in self.spec["recipients"]}
        for tr in self.stream["transfers"]:
            rcp = recipients[tr["recipient_id"]]
            if "on" in tr:  # one dated transfer (e.g. before a mechanism was in force)
                self.add(_on(tr["on"]), "crm", "transfer.made", {
                    "recipient_id": rcp["recipient_id"],
                    "destination_country": rcp["country"],
                    "mechanism": tr.get("mechanism", rcp["safeguard"]),
                    "data_categories": ["contact"], "activity_id": tr["activity_id"],
                    "count": self.rnd.randint(5, 200)})
                continue
            for day in range(0, self.stream["days"], tr["every_days"]):
                data: dict[str, Any] = {
                    "recipient_id": rcp["recipient_id"], "destination_country": rcp["country"],
                    "mechanism": tr.get("mechanism", rcp["safeguard"]),
                    "data_categories": ["contact"], "activity_id": tr["activity_id"],
                    "recurring": True, "count": self.rnd.randint(5, 200)}
                self.add(self._when(day, day + 1), "crm", "transfer.made", data)

    def _rights_requests(self) -> None:
        for rr in self.stream["rights_requests"]:
            at = (_on(rr["received_on"]) if "received_on" in rr
                  else self.now - timedelta(days=rr["days_ago"], hours=3))
            rid = rr["request_id"]
            person = self.people.get(f"requester-{rid}")
            subject = self.person_psn(person)
            erasure = rr["right"] == "erasure" and rr.get("fulfilled_after_days") is not None
            if erasure:  # a former subscriber: the consent's facts outlive the erasure
                self._former_subscriber(subject, person, at)
            self.add(at, "support", "rights_request.received", {
                "request_id": rid, "right": rr["right"],
                "received_at": format_rfc3339(at), "channel": "email"}, subject,
                sealed={"name": person.name, "email": person.email})
            if rr.get("fulfilled_after_days") is not None:
                done = at + timedelta(days=rr["fulfilled_after_days"])
                self.add(done, "support", "rights_request.fulfilled", {
                    "request_id": rid, "at": format_rfc3339(done)}, subject)
            if erasure:  # granted: the subject's keys are destroyed, linked to the request
                shred = done + timedelta(minutes=30)
                self.add(shred, "support", "subject.erased", {
                    "request_id": rid, "keys_destroyed_at": format_rfc3339(shred),
                    "reason": "erasure request granted (Art. 17(1))"}, subject)

    def _former_subscriber(self, subject: str, person: Person, request_at: datetime) -> None:
        """A consent given and withdrawn before the erasure request, so the demo shows
        which facts an erasure keeps (that a consent existed, when, for what)."""
        purpose = self.stream.get("consent_purpose") or "newsletter"
        given = max(self.start, request_at - timedelta(days=60))
        self.add(given, "web", "consent.given", {
            "purposes": [purpose], "activity_id": purpose, "method": "web_form_double_opt_in",
            "notice_version": "2024-05", "evidence_ref": "optin/requester"}, subject,
            sealed={"email": person.email})
        self.add(request_at - timedelta(days=1), "web", "consent.withdrawn", {
            "purposes": [purpose], "activity_id": purpose, "method": "unsubscribe_link"},
            subject)

    def _breaches(self) -> None:
        authority = self.spec["controller"].get("lead_authority", "Datatilsynet")
        for br in self.stream["breaches"]:
            detected = self.now - timedelta(days=br["days_ago"])
            aware = detected + timedelta(hours=br["aware_after_hours"] or 0)
            bid = br["breach_id"]
            self.add(detected, "soc", "breach.detected", {
                "breach_id": bid, "detected_at": format_rfc3339(detected),
                "description": br["description"]})
            if br["aware_after_hours"] is None:  # detected, awareness never recorded
                continue
            self.add(aware, "soc", "breach.aware", {"breach_id": bid,
                                                    "aware_at": format_rfc3339(aware)})
            if br.get("risk"):
                assessed = aware + timedelta(hours=6)
                self.add(assessed, "soc", "breach.assessed", {
                    "breach_id": bid, "risk": br["risk"], "subjects_approx": 140,
                    "records_approx": 300, "data_categories": ["name", "contact"]})
            if br.get("notified_after_hours") is not None:
                notified = aware + timedelta(hours=br["notified_after_hours"])
                data: dict[str, Any] = {"breach_id": bid, "authority": authority,
                                        "notified_at": format_rfc3339(notified),
                                        "phase": "initial"}
                if br.get("delay_reasons"):
                    data["delay_reasons"] = br["delay_reasons"]
                # The notice names whom the authority may call (Art. 33(3)(b)): sealed
                # under that person's pseudonym.
                contact = self.people.get(f"breach-contact-{bid}")
                self.add(notified, "soc", "breach.notified_authority", data,
                         self.person_psn(contact),
                         sealed={"contact_name": contact.name, "contact_email": contact.email,
                                 "contact_phone": contact.phone})


    def _odd_processing(self) -> None:
        """Processing the stream's recipe lists by hand: a basis the record of processing
        does not declare for the activity (e.g. consent where it says contract and law)."""
        for op in self.stream.get("odd_processing", []):
            self.add(self.now - timedelta(days=op["days_ago"]), "crm", "processing.performed",
                     {"activity_id": op["activity_id"], "basis": op["basis"],
                      "data_categories": op["data_categories"],
                      "subject_count": op.get("subject_count", 1)})


def _on(day: str) -> datetime:
    """A recipe's absolute date (YYYY-MM-DD) at 09:00 UTC: for facts whose point is the
    calendar (a request received on 31 January) rather than their age."""
    return datetime.fromisoformat(f"{day}T09:00:00+00:00")


def load_controller(ledger: Ledger, spec: dict[str, Any], now: datetime,
                    people: dict[str, People] | None = None) -> int:
    """Register the controller and its producers, then append its history. Returns the
    number of events appended; 0 when the controller is already in the ledger.
    ``people``, when given, receives the controller's invented people (for the privacy
    scan)."""
    cfg, ctl = ledger.cfg, spec["controller"]
    cid = ctl["id"]
    if cid in ledger.registry.controllers:
        return 0
    builder = StreamBuilder(spec, subject_key(ledger, cid), now)
    partials = builder.build()
    if people is not None:
        people[cid] = builder.people
    # Registered a day before its first fact (a recipe may date facts before the stream).
    first = min([builder.start, *(p[0] for p in partials)])
    origin_at = format_rfc3339(first - timedelta(days=1))
    data = {k: v for k, v in ctl.items() if k != "id"}
    results = [ledger.register_controller(cid, data, at=origin_at)]
    keys = {}
    for pid, types in spec["producers"].items():
        keys[pid] = producer_key(cfg, cid, pid)
        results.append(ledger.register_producer(cid, pid, public_key_text(keys[pid]), types,
                                                at=origin_at))
    # The server's own producer for what a DPO records on the pages (ledger.webforms).
    WebForms(ledger).ensure_producer(cid, at=origin_at)
    batch: list[dict[str, Any]] = []
    for at, pid, env, sealed in partials:
        env["occurred_at"] = format_rfc3339(at)
        if sealed:
            seal_envelope(env, sealed, ledger.keys)
        if env["type"] == "subject.erased":  # name the keys it destroys, as erase does
            env["data"]["key_ids"] = sorted(ledger.keys.subject_state(cid, env["subject"]).live)
        batch.append(complete(env, keys[pid], pid))
    for i in range(0, len(batch), 500):
        results.extend(ledger.submit(batch[i : i + 500]))
    bad = [r.to_dict() for r in results if r.status == "rejected"]
    if bad:
        raise RuntimeError(f"demo event rejected: {bad[0]}")
    # Storing the subject.erased destroyed the subject's keys (ingest does it).
    return len(results)


DEMO_KEYS = "demo-keys.json"


def demo_keys(data_dir: Path, admin_key: str | None, controllers: list[str]) -> dict[str, str]:
    """The demo's sign-in keys, kept in ``DIR/demo-keys.json`` (mode 0600) so every run
    can print them again: an admin key (records on the pages) and an auditor key for
    every example controller (reads only). A demo convenience — a real ledger's keys are
    shown once (``auditledger apikey create``) and stored only as hashes."""
    path = data_dir / DEMO_KEYS
    keys: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
    if admin_key:
        keys["admin_api_key"] = admin_key
    if "auditor_api_key" not in keys and controllers:
        store = ApiKeyStore(Config.load(data_dir).auth_db)
        try:
            keys["auditor_api_key"], _ = store.create("auditor", tuple(controllers))
        finally:
            store.close()
    path.touch(mode=0o600)
    path.write_bytes(orjson.dumps(keys, option=orjson.OPT_INDENT_2))
    return keys


def load_demo(data_dir: Path, progress: bool = True, clock: Clock | None = None,
              only: list[str] | None = None, port: int = 8080,
              people: dict[str, People] | None = None) -> dict[str, Any]:
    """Create (or reuse) a ledger in ``data_dir``, load every example controller, verify
    the whole log and return a summary with the latest signed checkpoints, the URL of the
    pages and the keys to sign in with. ``people`` receives the invented people of the
    controllers loaded now."""
    clock = clock or SystemClock()
    admin_key = None
    if not (data_dir / "config.json").exists():
        _, admin_key = init_data_dir(data_dir)
    # The demo imports months of history: it opens its own import window (in memory
    # only; the saved config keeps the lateness bound for what ``serve`` accepts later).
    cfg = replace(Config.load(data_dir),
                  history_import_until=format_rfc3339(clock.now() + timedelta(hours=1)))
    ledger = Ledger(cfg, clock=clock)
    try:
        loaded: dict[str, int] = {}
        for path in controller_files():
            spec = orjson.loads(path.read_bytes())
            if only and spec["controller"]["id"] not in only:
                continue
            loaded[spec["controller"]["id"]] = load_controller(ledger, spec, clock.now(),
                                                             people)
        ledger.flush()
        report = verify_source(LogSource(ledger.log), [ledger.verifier_key], ledger.verifier)
        checkpoints = {c: cp.note for c in ledger.log.controllers()
                       if (cp := ledger.log.latest_checkpoint(c)) is not None}
    finally:
        ledger.close()
    lines = [f"auditledger demo in {data_dir}"]
    for cid, n in loaded.items():
        lines.append(f"  {cid}: {'already loaded' if n == 0 else f'{n} signed events appended'}")
    lines.append("verify: " + ("OK, every signature, leaf and checkpoint checks out"
                               if report.ok else f"{len(report.problems)} PROBLEMS"))
    for cid, note in checkpoints.items():
        lines.append(f"latest signed checkpoint for {cid}:")
        lines.extend("    " + line for line in note.rstrip("\n").split("\n"))
    keys = demo_keys(data_dir, admin_key, sorted(checkpoints))
    url = f"http://127.0.0.1:{port}/"
    first = f"{url}c/NO-921119224/findings"
    lines += [
        "",
        f"Pages: {url}  (API docs: {url}docs)",
        f"  sign in as an auditor (read only):  {keys.get('auditor_api_key')}",
        f"  sign in as the DPO (admin, records breaches and requests):"
        f"  {keys.get('admin_api_key', '(shown at the first run; see ' + DEMO_KEYS + ')')}",
        f"  open first: {first}",
        f"  (the keys are kept in {data_dir / DEMO_KEYS})",
    ]
    return {"data_dir": str(data_dir), "loaded": loaded, "verify": report.to_dict(),
            "checkpoints": checkpoints, "admin_api_key": keys.get("admin_api_key"),
            "auditor_api_key": keys.get("auditor_api_key"), "url": url, "open_first": first,
            "text": "\n".join(lines)}
