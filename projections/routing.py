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


def shard_of(seq: int, type_: str, body: bytes | str) -> int | None:
    """0 or 1, or None for both."""
    if type_ in BROADCAST:
        return None
    kind = KEYS.get(type_)
    if kind is None:
        return seq & 1
    keys = _decode(body)
    if kind == "subject":
        key = keys.subject
    elif kind == "flow":
        key = f"{keys.data.recipient_id}|{keys.data.destination_country}"
    else:
        key = getattr(keys.data, kind)
    if key is None:
        return seq & 1  # no state of its own (a processing event without a subject)
    # crc32, not hash(): the same answer in every process, whatever PYTHONHASHSEED.
    return zlib.crc32(str(key).encode()) & 1
