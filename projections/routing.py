"""Which of two appliers an event goes to when a catch-up is split (``projections.shard``).

Why it is correct: a handler reads and changes state kept under one key — a subject's
consent history and erasure, a rights request, a breach, a derogation flow — and, besides,
only reads administration state (the controller, its activities and recipients). So the
log can be split by that key: every event touching one key goes to the same applier, in
log order, and each applier sees exactly the state a single pass would have shown it.
Administration events go to both (``BROADCAST``); only the runner's applier writes what
they change, the other keeps it in its caches. Event counts are the runner's (the reader
process tallies whole chunks).

The table is by event type and is data: a new handler must be classified here
(``tests/projections/test_shards.py`` fails otherwise), and a handler that starts to read
state under another key must move its type to ``BROADCAST`` or change its key.

Standard library and msgspec only: the reader process imports this module.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

#: Administration events: applied by both appliers, written by the runner's.
BROADCAST = frozenset({
    "controller.registered", "producer.registered", "producer.revoked",
    "recipient.registered", "recipient.updated", "recipient.removed",
    "processing_activity.declared", "processing_activity.amended",
    "processing_activity.retired",
})
#: The key an event's state hangs on, by type. Types absent here and from ``BROADCAST``
#: (``disclosure.made``: it only reads a recipient; types no handler reads) go to either
#: applier, by the parity of their position.
KEYS: dict[str, str] = {
    "consent.given": "subject",
    "consent.withdrawn": "subject",
    "processing.performed": "subject",  # consent history and erasure of the subject
    "subject.erased": "subject",
    "transfer.made": "flow",  # recipient and destination: recurring derogations
    **{f"rights_request.{t}": "request_id" for t in (
        "received", "identity_requested", "identity_verified", "extended", "fulfilled",
        "refused", "withdrawn")},
    **{f"breach.{t}": "breach_id" for t in (
        "detected", "aware", "processor_notified", "assessed", "notified_authority",
        "subjects_communicated", "communication_exempted", "closed")},
}
#: Types that read only administration state: any applier will do.
ANYWHERE = frozenset({"disclosure.made"})


class _DataKeys(msgspec.Struct, frozen=True):
    request_id: Any = None
    breach_id: Any = None
    recipient_id: Any = None
    destination_country: Any = None


class _Keys(msgspec.Struct):
    """What routing reads of an envelope; the decoder skips everything else."""

    subject: Any = None
    data: _DataKeys = _DataKeys()


_decode = msgspec.json.Decoder(_Keys).decode
_EMPTY = _Keys()


def split(rows: list[tuple[int, str, str, bytes]]) -> tuple[list[Any], list[Any]]:
    """The shares of applier 0 (the runner) and applier 1 of a chunk of log rows, in log
    order; broadcast events are in both. Written for speed (locals, no call per row): the
    reader process runs it on every event of a catch-up."""
    mine: list[Any] = []
    other: list[Any] = []
    keep, give = mine.append, other.append
    keys, broadcast, decode, crc32 = KEYS, BROADCAST, _decode, zlib.crc32
    for row in rows:
        seq, type_, _, body = row
        kind = keys.get(type_)
        if kind is None:
            if type_ in broadcast:
                keep(row)
                give(row)
                continue
            shard = seq & 1
        else:
            try:
                k = decode(body)
            except msgspec.DecodeError:  # not an envelope: the applier records it as
                k = _EMPTY  # unprocessable_event; any applier will do
            if kind == "subject":
                key = k.subject
            elif kind == "flow":
                key = f"{k.data.recipient_id}|{k.data.destination_country}"
            else:
                key = getattr(k.data, kind)
            shard = seq & 1 if key is None else crc32(str(key).encode()) & 1
        (give if shard else keep)(row)
    return mine, other
