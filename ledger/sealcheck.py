"""The ingest check of a ``sealed`` field, and what ingest does once an erasure is stored.

A sealed field the ledger accepted must be readable by whoever may read it, until the
subject is erased: so at ingest its ``kid`` must be a data key of that controller *for the
envelope's subject*, and the ciphertext must open under it (with the controller and event
id as associated data) to a JSON object. Otherwise the event is rejected ``sealed_invalid``
with a detail naming which of these failed. A kid already destroyed is accepted: the data
it sealed is erased whatever the ciphertext holds, and a producer that sealed just before
an erasure must not lose the non-personal facts of its event.

Unwrapping a data key costs a key-store transaction; ingest sees the same few kids again
and again (a subject's events arrive together), so unwrapped keys are cached per kid, in
memory only, bounded, and dropped the moment this process learns the subject was erased
(its own append of ``subject.erased``, or one another writer appended, seen on refresh).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ledger.codes import Code
from ledger.keystore import ERASED_TYPE, Destroyed, KeyStore, KeyStoreError, apply_erasure
from ledger.log.base import StoredEvent
from ledger.sealing import SealError, open_sealed

log = logging.getLogger(__name__)

#: Unwrapped data keys kept in memory (32 bytes each, plus ids): bounded, least recently
#: used first out.
CACHE_SIZE = 50_000


class SealedInvalid(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = Code.SEALED_INVALID, detail


class SealedChecker:
    """Checks sealed fields against one key store; caches unwrapped keys per kid."""

    def __init__(self, store: KeyStore, cache_size: int = CACHE_SIZE) -> None:
        self.store = store
        self.cache_size = cache_size
        # (controller, kid) -> (subject, key); destroyed kids are not cached (rare, and a
        # tombstone is read from the store each time so nothing of it lingers here).
        self._keys: OrderedDict[tuple[str, str], tuple[str, bytes]] = OrderedDict()

    def _key(self, controller: str, kid: str) -> tuple[str, bytes] | Destroyed | None:
        hit = self._keys.get((controller, kid))
        if hit is not None:
            self._keys.move_to_end((controller, kid))
            return hit
        try:
            found = self.store.key(controller, kid)
        except KeyStoreError as exc:  # a wrapped key that does not open: store damaged
            log.error("ingest: data key %s/%s: %s", controller, kid, exc)
            raise SealedInvalid(f"sealed.kid: the data key {kid} could not be unwrapped "
                                f"({exc.code}); the event was not stored") from None
        if found is None or isinstance(found, Destroyed):
            return found
        self._keys[(controller, kid)] = (found.subject, found.key)
        if len(self._keys) > self.cache_size:
            self._keys.popitem(last=False)
        return found.subject, found.key

    def check(self, env: dict[str, Any]) -> None:
        """Raise :class:`SealedInvalid` unless ``env["sealed"]`` is acceptable (the envelope
        schema has already required ``subject`` beside it)."""
        sealed, controller = env["sealed"], env["controller"]
        subject, kid = env.get("subject"), sealed["kid"]
        found = self._key(controller, kid)
        if found is None:
            raise SealedInvalid(f"sealed.kid: {kid} is not a data key of controller "
                                f"{controller}")
        owner = found.subject if isinstance(found, Destroyed) else found[0]
        if owner != subject:
            raise SealedInvalid(f"sealed.kid: {kid} is not a data key of this event's "
                                "subject")
        if isinstance(found, Destroyed):
            return  # erased already: nothing left to read, nothing to check
        try:
            open_sealed(sealed, found[1], controller, env["event_id"])
        except SealError as exc:
            raise SealedInvalid(str(exc)) from None

    def forget(self, controller: str, subject: str) -> None:
        """Drop every cached key of ``subject`` (it is being, or was, erased)."""
        for ident in [k for k, (s, _) in self._keys.items()
                      if k[0] == controller and s == subject]:
            del self._keys[ident]

    def erased(self, events: Iterable[StoredEvent], apply: bool = True) -> None:
        """Stored ``subject.erased`` events: forget their subjects' keys and (``apply``)
        destroy them in the key store. A failure to destroy is logged, never raised: the
        event is durable, and the next start re-applies it (``reapply_erasures``)."""
        for ev in events:
            if ev.type != ERASED_TYPE:
                continue
            env = ev.envelope()
            self.forget(ev.controller, env["subject"])
            if not apply:
                continue
            try:
                apply_erasure(self.store, ev)
            except Exception:
                log.exception("erasure %s/%s is stored but its keys were not destroyed "
                              "yet; they will be at the next start", ev.controller,
                              ev.event_id)
