"""A data subject as the write side knows it: its events in the log, its keys, and the
checks an erasure must pass before it is recorded.

The write side answers these from the log itself (never from the projections): an erasure
is irreversible, so what decides it is the log of record, read at the moment of erasing.
The log has no index by subject; the scan is one pass over the controller's events with a
byte search for the pseudonym before anything is parsed (docs/erasure.md gives the cost).

Stable error codes (:class:`SubjectError`): ``unknown_controller``, ``unknown_subject``
(no key and no event with that subject), ``already_erased`` (erased, and no key made
since), ``request_mismatch`` (the ``request_id`` is not a rights request of right
``erasure`` for that subject, or it was refused or withdrawn).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.codes import CodedError
from ledger.keystore import SubjectKeys
from ledger.log.base import Log, StoredEvent

RIGHTS_TYPES = ("rights_request.received", "rights_request.refused",
                "rights_request.withdrawn")


class SubjectError(CodedError):
    """``code`` is stable (see the module docstring); ``detail`` says why, in one line."""


@dataclass(frozen=True, slots=True)
class Record:
    event_id: str
    type: str
    occurred_at: str
    index: int

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "type": self.type,
                "occurred_at": self.occurred_at, "index": self.index}


def subject_events(log: Log, controller: str, subject: str) -> Iterator[StoredEvent]:
    """The stored events of ``controller`` whose envelope ``subject`` is ``subject``, in
    log order. The stored body is JCS, so the member is written exactly
    ``"subject":"psn:…"``: a byte search skips every other event unparsed."""
    needle = b'"subject":' + orjson.dumps(subject)
    for ev in log.events(controller=controller):
        if needle in ev.body and ev.envelope().get("subject") == subject:
            yield ev


def records(log: Log, controller: str, subject: str) -> list[Record]:
    return [Record(ev.event_id, ev.type, ev.occurred_at, ev.index)
            for ev in subject_events(log, controller, subject)]


def key_state(state: SubjectKeys) -> dict[str, Any]:
    return {"live": list(state.live), "destroyed": list(state.destroyed),
            "erased_at": state.erased_at}


def check_erasable(state: SubjectKeys, found: list[Record], subject: str) -> None:
    """``unknown_subject`` / ``already_erased``, from the key store's state and the log."""
    if not state.known and not found:
        raise SubjectError("unknown_subject", f"no key and no event of subject {subject}")
    if state.erased_at is not None and not state.live:
        raise SubjectError("already_erased", f"subject {subject} was erased at "
                           f"{state.erased_at} and has no key made since")


def check_request(log: Log, controller: str, subject: str, request_id: str) -> None:
    """``request_mismatch`` unless ``request_id`` is a rights request of right ``erasure``
    for ``subject`` that was neither refused nor withdrawn (the last word of the log at
    this moment; a refusal after a received is final, as the projections read it)."""
    received: dict[str, Any] | None = None
    closed: str | None = None
    for ev in log.events(controller=controller, types=list(RIGHTS_TYPES)):
        env = ev.envelope()
        if env["data"].get("request_id") != request_id:
            continue
        if ev.type == "rights_request.received":
            received = received or env
        else:
            closed = ev.type.rsplit(".", 1)[1]
    if received is None:
        raise SubjectError("request_mismatch",
                           f"no rights request {request_id} of controller {controller}")
    if received.get("subject") != subject:
        raise SubjectError("request_mismatch",
                           f"rights request {request_id} is another subject's")
    if received["data"].get("right") != "erasure":
        raise SubjectError("request_mismatch", f"rights request {request_id} is for the "
                           f"right {received['data'].get('right')}, not erasure")
    if closed is not None:
        raise SubjectError("request_mismatch",
                           f"rights request {request_id} was {closed}")
