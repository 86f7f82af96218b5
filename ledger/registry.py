"""Controllers and producers, derived only from administration events in the log.

Nothing about who may write lives outside the log: an offline verifier replays the same
events and reaches the same answer for every signature, at every position.

Trust model:
- ``controller.registered`` is self-signed by the controller's admin key
  (``data.admin_public_key``; envelope ``producer`` is ``admin``). Re-registration (e.g. a
  new time zone) must be signed by the admin key already in force.
- ``producer.registered`` / ``producer.revoked`` are signed by that admin key. Registering
  an existing producer id again rotates its key from that point of the log on.
- A producer is revoked *at* ``data.revoked_at``: its events that occurred before that
  instant are still accepted (late delivery), later ones are ``producer_revoked``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from ledger.clock import parse_rfc3339
from ledger.codes import Code
from ledger.encoding import unb64url

ADMIN = "admin"
ADMIN_TYPES = frozenset({"controller.registered", "producer.registered", "producer.revoked"})


@dataclass
class Producer:
    producer_id: str
    public_key: bytes
    types: tuple[str, ...]
    revoked_at: datetime | None = None

    _verdicts: dict[str, bool] = field(default_factory=dict, repr=False)

    def allows(self, type_: str) -> bool:
        verdict = self._verdicts.get(type_)
        if verdict is None:  # a handful of types per producer: match each pattern once
            verdict = self._verdicts[type_] = any(fnmatchcase(type_, p) for p in self.types)
        return verdict


@dataclass
class Controller:
    controller_id: str
    data: dict[str, Any]
    admin_key: bytes
    producers: dict[str, Producer] = field(default_factory=dict)


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
                return unb64url(env["data"]["admin_public_key"], 32)
            raise RegistryError(Code.UNKNOWN_CONTROLLER, f"controller {cid} is not registered")
        if pid == ADMIN:
            # Re-registration may rotate the admin key, but only signed by the old one.
            return ctl.admin_key
        prod = ctl.producers.get(pid)
        if prod is None:
            raise RegistryError(
                Code.UNKNOWN_PRODUCER, f"producer {pid} is not registered for {cid}"
            )
        if prod.revoked_at is not None and occurred_at >= prod.revoked_at:
            raise RegistryError(
                Code.PRODUCER_REVOKED,
                f"producer {pid} was revoked at {prod.revoked_at.isoformat()}",
            )
        if type_ in ADMIN_TYPES or not prod.allows(type_):
            raise RegistryError(
                Code.TYPE_NOT_ALLOWED, f"producer {pid} may not emit {type_} for {cid}"
            )
        return prod.public_key

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
            ctl.producers[data["producer_id"]] = Producer(
                data["producer_id"], unb64url(data["public_key"], 32), tuple(data["types"])
            )
        elif type_ == "producer.revoked":
            prod = self.controllers[cid].producers.get(data["producer_id"])
            if prod is not None:
                prod.revoked_at = parse_rfc3339(data["revoked_at"])

