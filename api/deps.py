"""Dependencies as ``Annotated`` aliases: routes declare what they need, nothing more.

They are ``async`` although they block for microseconds (an indexed SQLite lookup): a sync
dependency costs a thread-pool round trip per request, which dominated read latency.

``Reader`` / ``Writer`` check the key's role; ``VisibleController`` resolves the
``{controller}`` path parameter and answers 404 — the same 404 — for a controller that
does not exist and for one the key may not see.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import bearer, require_role
from api.errors import not_found
from api.metrics import Metrics
from api.readside import ReadSide
from ledger.apikeys import ApiKey
from ledger.clock import Clock
from ledger.service import Ledger


async def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_read_side(request: Request) -> ReadSide | None:
    """The projections (store, runner, queries) or None when not installed."""
    return request.app.state.read_side


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReadSideDep = Annotated[ReadSide | None, Depends(get_read_side)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def current_key(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    return request.app.state.auth(creds)


CurrentKey = Annotated[ApiKey, Depends(current_key)]


async def reader(key: CurrentKey) -> ApiKey:
    return require_role(key, ("auditor", "admin"))


async def writer(key: CurrentKey) -> ApiKey:
    return require_role(key, ("producer", "admin"))


Reader = Annotated[ApiKey, Depends(reader)]
Writer = Annotated[ApiKey, Depends(writer)]


def controller_exists(ledger: Ledger, controller: str) -> bool:
    return controller in ledger.registry.controllers or ledger.log.size(controller) > 0


async def visible_controller(
    controller: Annotated[str, Path(description="Controller id, e.g. NO-921119224.",
                                    max_length=64)],
    key: Reader,
    ledger: LedgerDep,
) -> str:
    if not key.may_see(controller) or not controller_exists(ledger, controller):
        raise not_found(f"controller {controller}")
    return controller


VisibleController = Annotated[str, Depends(visible_controller)]
