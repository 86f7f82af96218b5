"""Controllers and producers, derived only from administration events in the log.

Nothing about who may write lives outside the log: an offline verifier replays the same
events and reaches the same answer for every signature, at every position.

Trust model:
- ``controller.registered`` is self-signed by the controller's admin key
  (``data.admin_public_key``; envelope ``producer`` is ``admin``). Re-registration (e.g. a
  new time zone) must be signed by the admin key already in force.
- ``producer.registered`` / ``producer.revoked`` are signed by that admin key.
- Key history: each producer holds a list of keys, each valid from its registration's
  ``data.valid_from`` (no ``valid_from``: valid for any ``occurred_at``). The key that must
  sign an event is the one with the latest ``valid_from`` at or before its
  ``occurred_at``. Registering without ``valid_from`` replaces the whole history (the
  old keys can sign nothing from that point of the log on); with ``valid_from`` it adds a
  key from that instant (a planned rotation: events that occurred earlier are still
  checked against the earlier key) and drops keys valid from that instant or later. An
  event that occurred before the producer's first key is valid is ``unknown_producer``
  (no key of that producer existed then).
- A producer is revoked *at* ``data.revoked_at``: every key it holds at that point of the
  log stops signing for events that occurred at or after that instant (earlier ones are
  still accepted: late delivery, bounded by ingest's lateness limit); a key registered
  after the revocation is a new authorisation.

The registry changes only when an administration event is *stored* (ingest applies it
once it is certain to be appended, in log order; ``verify`` replays the stored ones), so
ingest and verify reach the same key for every event.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from ledger.clock import parse_rfc3339
from ledger.codes import Code
from ledger.encoding import EncodingError, unb64url

ADMIN = "admin"
ADMIN_TYPES = frozenset({"controller.registered", "producer.registered", "producer.revoked"})


@dataclass
class Key:
    """One registration of a producer: its key, what it may emit, from when, until when."""

    public_key: bytes
    types: tuple[str, ...]
    valid_from: datetime | None = None
    revoked_at: datetime | None = None

    _verdicts: dict[str, bool] = field(default_factory=dict, repr=False)

    def allows(self, type_: str) -> bool:
        verdict = self._verdicts.get(type_)
        if verdict is None:  # a handful of types per producer: match each pattern once
            verdict = self._verdicts[type_] = any(fnmatchcase(type_, p) for p in self.types)
        return verdict


@dataclass
class Producer:
    producer_id: str
    keys: list[Key]  # ordered by valid_from; a key without one comes first (and alone)

    def key_at(self, occurred_at: datetime) -> Key | None:
        """The key in force for an event that occurred at ``occurred_at``."""
        found = None
        for key in self.keys:
            if key.valid_from is None or key.valid_from <= occurred_at:
                found = key
            else:
                break
        return found

    def register(self, key: Key) -> None:
        if key.valid_from is None:
            self.keys = [key]
            return
        vf = key.valid_from
        self.keys = [k for k in self.keys if k.valid_from is None or k.valid_from < vf]
        self.keys.append(key)

    def revoke(self, at: datetime) -> None:
        for key in self.keys:
            if key.revoked_at is None or at < key.revoked_at:
                key.revoked_at = at


@dataclass
class Controller:
    controller_id: str
    data: dict[str, Any]
    admin_key: bytes
    producers: dict[str, Producer] = field(default_factory=dict)

    @property
    def country(self) -> str | None:
        """ISO country of the controller (required at registration): what a telephone
        number without ``+`` means when it is pseudonymised."""
        return self.data.get("country")


class RegistryError(Exception):
    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Registry:
    """Current state of controllers and producers. ``apply`` is called for every stored
    administration event, in log order."""

    def __init__(self) -> None:
        self.controllers: dict[str, Controller] = {}

    def copy(self) -> Registry:
        return copy.deepcopy(self)

    def signing_key(self, env: dict[str, Any], occurred_at: datetime) -> bytes:
        """The public key that must have signed ``env``; raises RegistryError with the
        rejection code when no key may sign it."""
        cid, pid, type_ = env["controller"], env["producer"], env["type"]
        ctl = self.controllers.get(cid)
        if ctl is None:
            if type_ == "controller.registered" and pid == ADMIN:
                try:
                    return unb64url(env["data"]["admin_public_key"], 32)
                except EncodingError as exc:  # the schema's pattern should stop it first
                    raise RegistryError(Code.SCHEMA_VIOLATION,
                                        f"data.admin_public_key: {exc}") from None
            raise RegistryError(Code.UNKNOWN_CONTROLLER, f"controller {cid} is not registered")
        if pid == ADMIN:
            # Re-registration may rotate the admin key, but only signed by the old one.
            return ctl.admin_key
        prod = ctl.producers.get(pid)
        if prod is None:
            raise RegistryError(
                Code.UNKNOWN_PRODUCER, f"producer {pid} is not registered for {cid}"
            )
        key = prod.key_at(occurred_at)
        if key is None:
            first = prod.keys[0].valid_from
            raise RegistryError(
                Code.UNKNOWN_PRODUCER,
                f"producer {pid} has no key valid at occurred_at (its first key is valid "
                f"from {first.isoformat() if first else '?'})",
            )
        if key.revoked_at is not None and occurred_at >= key.revoked_at:
            raise RegistryError(
                Code.PRODUCER_REVOKED,
                f"producer {pid} was revoked at {key.revoked_at.isoformat()}",
            )
        if type_ in ADMIN_TYPES or not key.allows(type_):
            raise RegistryError(
                Code.TYPE_NOT_ALLOWED, f"producer {pid} may not emit {type_} for {cid}"
            )
        return key.public_key

    def apply(self, env: dict[str, Any]) -> None:
        """Fold one stored administration event into the state (no-op for other types)."""
        type_, cid, data = env["type"], env["controller"], env["data"]
        if type_ == "controller.registered":
            key = unb64url(data["admin_public_key"], 32)
            ctl = self.controllers.get(cid)
            if ctl is None:
                self.controllers[cid] = Controller(cid, dict(data), key)
            else:
                ctl.data, ctl.admin_key = dict(data), key
        elif type_ == "producer.registered":
            ctl = self.controllers[cid]
            pid = data["producer_id"]
            valid_from = data.get("valid_from")
            key = Key(unb64url(data["public_key"], 32), tuple(data["types"]),
                      parse_rfc3339(valid_from) if valid_from else None)
            prod = ctl.producers.get(pid)
            if prod is None:
                ctl.producers[pid] = Producer(pid, [key])
            else:
                prod.register(key)
        elif type_ == "producer.revoked":
            prod = self.controllers[cid].producers.get(data["producer_id"])
            if prod is not None:
                prod.revoke(parse_rfc3339(data["revoked_at"]))
