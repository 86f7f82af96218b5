"""The ``web-forms`` producer: what a DPO records on the pages, as signed events.

A breach or a rights request is a case moving through steps (a breach is detected, the
controller becomes aware, assesses it, notifies the authority …). The pages offer one
form per step; this module turns a submitted form into the event of that step, signs it
with a producer key of the server's own and appends it through ingest like any other
producer's event — so a form adds nothing ingest and ``auditledger verify`` would not
accept from a CRM.

Why a producer of its own and not the controller's admin key: the admin key may only sign
administration events, and a DPO's breach notes must be revocable without touching the
controller's registration. ``web-forms`` is registered per controller by a
``producer.registered`` signed by that controller's admin key (held in the data dir), may
emit ``breach.*`` and ``rights_request.*`` only, and its private key lives in
``DIR/keys/producers/<controller>/web-forms.pem`` (the demo's producers live beside it).

Who acted: every event names the signed-in API key in ``data.ext.recorded_by`` (its id,
never the secret) and its role in ``data.ext.recorded_role``; the envelope's
``producer`` is ``web-forms``. The fields of each form are read from the event type's
JSON Schema (``schemas/events/<type>.json``): one definition of what an event holds.
"""

from __future__ import annotations

import re
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.clock import Clock, InvalidTime, format_rfc3339, parse_rfc3339
from ledger.codes import Code
from ledger.config import Config
from ledger.envelope import complete, pseudonym
from ledger.ingest import Result
from ledger.schemas import default_schemas
from ledger.signing import generate_key, load_private_key, public_key_text, save_private_key

PRODUCER = "web-forms"
TYPES = ("breach.*", "rights_request.*")
#: Roles whose keys may record through the forms (docs/auditors.md). An auditor key reads.
RECORDING_ROLES = ("admin",)
#: The form field that names the data subject of a rights request (never stored: the
#: server keeps only its pseudonym, ``psn:…``, in the envelope's ``subject``).
SUBJECT_FIELD = "subject_identifier"
#: A fact time later than this after the server's clock is a typo, not a fact.
FUTURE_SLACK = timedelta(minutes=5)


# -- keys in the data directory ------------------------------------------------------------


def subject_key(ledger: Any, controller: str) -> bytes:
    """The controller's HMAC key for pseudonymous subject references, from the key store
    (made on first use; a key an older version kept in clear in the data dir is taken
    over, so pseudonyms already in the log stay the same)."""
    legacy = ledger.cfg.keys_dir / "controllers" / f"{controller}.subject.key"
    return ledger.keys.subject_key(controller, legacy_file=legacy)


def producer_key_file(cfg: Config, controller: str, producer: str) -> Path:
    return cfg.keys_dir / "producers" / controller / f"{producer}.pem"


def producer_key(cfg: Config, controller: str, producer: str) -> Any:
    """A producer's private key in the data dir (generated on first use)."""
    path = producer_key_file(cfg, controller, producer)
    if not path.exists():
        save_private_key(generate_key(), path)
    return load_private_key(path)


# -- the forms, read from the schemas -------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One input of a form. ``kind`` is how the text typed is read: ``text`` (one line),
    ``textarea``, ``datetime`` (local time of the controller, or RFC 3339), ``count``
    (integer), ``list`` (comma-separated), ``choice`` (one of ``options``), ``choices``
    (several of ``options``), ``flag`` (yes / no / not said)."""

    name: str
    kind: str
    required: bool
    label: str
    help: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    case: str  # "breach" | "rights_request"
    slug: str
    type: str
    label: str
    fields: tuple[Field, ...]

    @property
    def id_field(self) -> str:
        return "breach_id" if self.case == "breach" else "request_id"

    @property
    def opens(self) -> bool:
        """The first step of a case: the DPO names the case (its id)."""
        return self.slug in ("detected", "received")


CASES: dict[str, list[tuple[str, str, str]]] = {
    "breach": [
        ("detected", "breach.detected", "Detected"),
        ("aware", "breach.aware", "Became aware (starts the 72 hours)"),
        ("assessed", "breach.assessed", "Risk assessed"),
        ("notified", "breach.notified_authority", "Authority notified"),
        ("communicated", "breach.subjects_communicated", "Data subjects told"),
        ("exempted", "breach.communication_exempted", "Communication exempted (Art. 34(3))"),
        ("closed", "breach.closed", "Closed"),
    ],
    "rights_request": [
        ("received", "rights_request.received", "Received"),
        ("identity_requested", "rights_request.identity_requested", "Identity requested"),
        ("identity_verified", "rights_request.identity_verified", "Identity verified"),
        ("extended", "rights_request.extended", "Extended (Art. 12(3))"),
        ("fulfilled", "rights_request.fulfilled", "Fulfilled"),
        ("refused", "rights_request.refused", "Refused"),
        ("withdrawn", "rights_request.withdrawn", "Withdrawn"),
    ],
}

_LONG = {"description", "reason", "consequences", "measures", "reasoning", "delay_reasons",
         "summary"}


def _field(name: str, prop: dict[str, Any], defs: dict[str, Any], required: bool) -> Field:
    ref = prop.get("$ref", "").rsplit("/", 1)[-1]
    node = defs.get(ref, prop) if ref else prop
    help_ = prop.get("description") or node.get("description") or ""
    if "floating-point" in help_ or help_.startswith(("An identifier", "Free text", "A short")):
        help_ = ""  # a schema author's note, not a DPO's: the field's kind says enough
    label = name.replace("_", " ").capitalize()
    items = node.get("items") if isinstance(node.get("items"), dict) else {}
    items = defs.get(items.get("$ref", "").rsplit("/", 1)[-1], items)
    if "enum" in node:
        kind, options = "choice", tuple(node["enum"])
    elif node.get("type") == "array" and "enum" in items:
        kind, options = "choices", tuple(items["enum"])
    elif node.get("type") == "array":
        kind, options = "list", ()
    elif node.get("type") == "integer":
        kind, options = "count", ()
    elif node.get("type") == "boolean":
        kind, options = "flag", ()
    elif node.get("format") == "date-time":
        kind, options = "datetime", ()
    else:
        kind, options = ("textarea" if name in _LONG else "text"), ()
    return Field(name, kind, required, label, help_, options)


def _build_steps() -> dict[tuple[str, str], Step]:
    schemas = default_schemas()
    out: dict[tuple[str, str], Step] = {}
    for case, steps in CASES.items():
        for slug, type_, label in steps:
            schema = schemas.schema_for(type_)
            required = set(schema.get("required", []))
            fields = tuple(_field(name, prop, schema.get("$defs", {}), name in required)
                           for name, prop in schema["properties"].items() if name != "ext")
            if slug == "received":
                fields += (Field(SUBJECT_FIELD, "text", True, "Data subject",
                                 "E-mail address or phone number of the person asking. "
                                 "Only its pseudonym (psn:…) is stored."),)
            out[case, slug] = Step(case, slug, type_, label, fields)
    return out


STEPS = _build_steps()


def steps_of(case: str) -> list[Step]:
    return [STEPS[case, slug] for slug, _, _ in CASES[case]]


# -- reading a submitted form -----------------------------------------------------------------


class FormRejected(Exception):
    """The form cannot be recorded. ``errors`` maps a field name to what is wrong with
    it; the key ``""`` holds what concerns the form as a whole."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k or 'form'}: {v}" for k, v in errors.items()))
        self.errors = errors


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


_LOCAL = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?$")


def parse_local_time(value: str, tz: ZoneInfo) -> datetime:
    """``2026-12-03 14:05`` in the controller's zone, or an RFC 3339 time with offset."""
    m = _LOCAL.match(value)
    if m:
        try:
            naive = datetime.fromisoformat(f"{m[1]}T{m[2]}{m[3] or ':00'}")
        except ValueError:
            raise InvalidTime("not a real date and time") from None
        return naive.replace(tzinfo=tz)
    return parse_rfc3339(value)


def local_input(at: datetime, tz: ZoneInfo) -> str:
    """What a time field shows: the controller's local time, to the minute."""
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _values(form: Mapping[str, Any], name: str) -> list[str]:
    raw = form.get(name)
    if raw is None:
        return []
    items = raw if isinstance(raw, list | tuple) else [raw]
    return [str(v).strip() for v in items if str(v).strip()]


def read_form(step: Step, form: Mapping[str, Any], tz: ZoneInfo,
              now: datetime) -> tuple[dict[str, Any], str | None]:
    """``(data, subject identifier)`` from the submitted values, or ``FormRejected``
    naming every field that is missing or cannot be read (the schema's finer rules are
    ingest's: its rejection is mapped to the field afterwards)."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    subject = None
    for f in step.fields:
        values = _values(form, f.name)
        if not values:
            if f.required:
                errors[f.name] = "required"
            continue
        value = values[0]
        if f.name == SUBJECT_FIELD:
            subject = value
            continue
        try:
            data[f.name] = _convert(f, value, values, tz, now)
        except ValueError as exc:
            errors[f.name] = str(exc)
    if errors:
        raise FormRejected(errors)
    return data, subject


def _convert(f: Field, value: str, values: list[str], tz: ZoneInfo, now: datetime) -> Any:
    if f.kind == "datetime":
        try:
            at = parse_local_time(value, tz)
        except InvalidTime as exc:
            raise ValueError(f"{value!r} is not a time ({exc}); write YYYY-MM-DD HH:MM, "
                             f"{tz.key} time") from None
        if at > now + FUTURE_SLACK:
            raise ValueError(f"{local_input(at, tz)} is in the future")
        return format_rfc3339(at)
    if f.kind == "count":
        if not value.isdigit():
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    if f.kind == "list":
        return [p.strip() for p in re.split(r"[,\n]", value) if p.strip()]
    if f.kind == "choices":
        return values
    if f.kind == "flag":
        if value not in ("yes", "no"):
            raise ValueError("answer yes or no")
        return value == "yes"
    return value


def field_of(detail: str | None, step: Step) -> str:
    """The form field an ingest rejection is about: ``data.risk: …`` → ``risk``,
    ``subject: …`` → the subject field; ``""`` (the whole form) otherwise."""
    where = (detail or "").split(":", 1)[0]
    if where == "subject" and step.slug == "received":
        return SUBJECT_FIELD
    if where.startswith("data."):
        name = re.split(r"[.\[]", where[len("data."):], maxsplit=1)[0]
        if any(f.name == name for f in step.fields):
            return name
    return ""


# -- recording ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """A form's event in the log: ``duplicate`` when this very form was sent before."""

    event_id: str
    index: int | None
    duplicate: bool


class WebForms:
    """Records forms as events of ``web-forms``. ``lock`` is the ingest lock the API
    holds around every ``Ledger.submit`` (one writer at a time)."""

    def __init__(self, ledger: Any, lock: threading.Lock | None = None,
                 clock: Clock | None = None) -> None:
        self.ledger = ledger
        self.lock = lock or threading.Lock()
        self.clock = clock or ledger.clock

    @property
    def cfg(self) -> Config:
        return self.ledger.cfg

    def registered(self, controller: str) -> bool:
        ctl = self.ledger.registry.controllers.get(controller)
        return ctl is not None and PRODUCER in ctl.producers

    def ensure_producer(self, controller: str, at: str | None = None) -> None:
        """Register ``web-forms`` for ``controller`` unless it is already (signed by the
        controller's admin key; ``ConfigError`` when this data dir does not hold it)."""
        if self.registered(controller):
            return
        key = producer_key(self.cfg, controller, PRODUCER)
        with self.lock:
            if self.registered(controller):
                return
            result = self.ledger.register_producer(controller, PRODUCER,
                                                   public_key_text(key), list(TYPES), at=at)
        if result.status == "rejected":
            raise RuntimeError(f"registering {PRODUCER} for {controller}: "
                               f"{result.code}: {result.detail}")

    def timezone(self, controller: str) -> ZoneInfo:
        ctl = self.ledger.registry.controllers.get(controller)
        return zone((ctl.data if ctl else {}).get("timezone"))

    def record(self, controller: str, case: str, slug: str, form: Mapping[str, Any],
               recorded_by: str, role: str, case_id: str | None = None,
               event_id: str | None = None) -> Recorded:
        """Append the event of ``case``/``slug`` from ``form``.

        ``case_id`` fixes the breach or request id (a later step of a known case);
        ``event_id`` is the form's own id, rendered with it, so a form sent twice (a
        double click, a reload) is recorded once. Raises ``FormRejected``."""
        step = STEPS.get((case, slug))
        if step is None:
            raise FormRejected({"": f"no step {slug!r} for a {case}"})
        if role not in RECORDING_ROLES:
            raise PermissionError(f"a key with role {role} may not record")
        if case_id is not None:
            form = {**form, step.id_field: case_id}
        event_id = event_id if _is_uuid(event_id) else str(uuid.uuid4())
        known = self.ledger.log.lookup(controller, [event_id]).get(event_id)
        if known is not None:
            return Recorded(event_id, known.index, duplicate=True)
        now = self.clock.now()
        data, identifier = read_form(step, form, self.timezone(controller), now)
        data["ext"] = {"recorded_by": recorded_by, "recorded_role": role}
        self.ensure_producer(controller)
        partial: dict[str, Any] = {"event_id": event_id, "type": step.type,
                                   "controller": controller, "data": data,
                                   "occurred_at": format_rfc3339(now)}
        if identifier is not None:
            ctl = self.ledger.registry.controllers.get(controller)
            partial["subject"] = (identifier if identifier.startswith("psn:")
                                  else pseudonym(subject_key(self.ledger, controller),
                                                 identifier, ctl.country if ctl else None))
        env = complete(partial, producer_key(self.cfg, controller, PRODUCER), PRODUCER)
        with self.lock:
            (result,) = self.ledger.submit([env])
        return _answer(result, step)


def _answer(result: Result, step: Step) -> Recorded:
    if result.status in ("accepted", "duplicate"):
        return Recorded(result.event_id or "", result.index,
                        duplicate=result.status == "duplicate")
    if result.code == Code.EVENT_ID_CONFLICT.value:
        return Recorded(result.event_id or "", None, duplicate=True)
    field = field_of(result.detail, step)
    detail = result.detail or result.code or "rejected"
    if field:  # "data.risk: "medium" is not one of …" beside the risk field: drop "data.risk"
        detail = detail.split(": ", 1)[-1]
    raise FormRejected({field: f"{detail} ({result.code})" if not field else detail})


def _is_uuid(value: str | None) -> bool:
    try:
        return value is not None and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def new_case_id(case: str, now: datetime) -> str:
    """A suggestion for a new case's id: ``br-20261203-1a2b`` / ``dsr-20261203-1a2b``."""
    prefix = "br" if case == "breach" else "dsr"
    return f"{prefix}-{now:%Y%m%d}-{secrets.token_hex(2)}"
