"""Each controller's log as C2SP tlog-tiles, under ``/v1/controllers/{c}/tlog/``.

``checkpoint`` is the latest signed checkpoint note (the same note as
``…/checkpoint``'s ``note``), ``tile/<L>/<N>[.p/<W>]`` the hash tiles and
``tile/entries/<N>[.p/<W>]`` the entry bundles (ledger.tiles says what they hold).

Decisions (docs/tlog.md):
- Auth and tenant isolation as every read route: an auditor or admin key that may see the
  controller; any other controller answers the same 404 as one that does not exist.
- Tiles are served up to the latest signed checkpoint's size, full and partial alike,
  never beyond: a client holds no checkpoint that needs more, and nothing unsigned is
  published. A tile outside it, or a path that names no tile, is a 404.
- Caching: the checkpoint changes every second while events arrive, so ``no-cache``;
  a tile's path names its bytes for ever, so ``max-age`` one year and ``immutable``.
  Both are ``private``: the answer depends on the caller's key, and a shared cache must
  not hand one tenant's log to another's key.
- Entry bundles are gzipped when the client accepts gzip (the spec's SHOULD).
"""

from __future__ import annotations

import gzip
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep, VisibleController
from api.errors import ApiError, not_found
from api.routes.proofs import latest_covering
from api.routes.read import ERRORS
from ledger.service import Ledger
from ledger.tiles import (
    TilePath,
    TilePathError,
    entry_bundle,
    hash_tile,
    parse_tile_path,
    tile_fits,
)

router = APIRouter(tags=["tlog"], responses=ERRORS)

IMMUTABLE = "private, max-age=31536000, immutable"
MUTABLE = "private, no-cache"
OCTETS = "application/octet-stream"


@router.get(
    "/v1/controllers/{controller}/tlog/checkpoint",
    summary="The latest signed checkpoint as a C2SP tlog-tiles checkpoint",
    response_class=Response,
    responses={200: {"content": {"text/plain; charset=utf-8": {"schema": {"type": "string"}}},
                     "description": "The signed note (origin `auditledger/<controller>`)."}},
)
async def get_tlog_checkpoint(
    request: Request, controller: VisibleController, ledger: LedgerDep
) -> Response:
    cp = latest_covering(ledger, request.app.state.ingest_lock, controller, 1)
    return Response(cp.note.encode("utf-8"), media_type="text/plain; charset=utf-8",
                    headers={"Cache-Control": MUTABLE})


def _tile_bytes(ledger: Ledger, controller: str, tile: TilePath) -> bytes:
    cp = ledger.log.latest_checkpoint(controller)
    if cp is None or not tile_fits(tile, cp.size):
        raise not_found("tile")
    if tile.level is not None:
        return hash_tile(ledger.log.node_getter(controller), tile)

    def body_at(index: int) -> bytes:
        ev = ledger.log.event_at(controller, index)
        if ev is None:  # pragma: no cover - every leaf below a checkpoint is stored
            raise not_found(f"entry {index}")
        return ev.body

    try:
        return entry_bundle(body_at, tile)
    except ValueError as exc:
        raise ApiError(500, "entry_too_large", str(exc)) from None


@router.get(
    "/v1/controllers/{controller}/tlog/tile/{level}/{index:path}",
    summary="A C2SP tlog-tiles hash tile (`<L>` = 0..63) or entry bundle (`entries`)",
    response_class=Response,
    responses={200: {"content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
                     "description": "256 hashes (or entries), or `<W>` for `.p/<W>`."}},
)
async def get_tile(
    request: Request,
    controller: VisibleController,
    ledger: LedgerDep,
    level: Annotated[str, Path(max_length=7, description="0..63, or `entries`.")],
    index: Annotated[str, Path(max_length=100, description=(
        "`<N>[.p/<W>]`: N as zero-padded 3-digit path elements, all but the last "
        "prefixed `x` (e.g. `x001/234`); `.p/<W>` for a partial tile of W < 256."))],
) -> Response:
    try:
        tile = parse_tile_path(level, index)
    except TilePathError as exc:
        raise not_found(f"tile ({exc})") from None
    body = await run_in_threadpool(_tile_bytes, ledger, controller, tile)
    headers = {"Cache-Control": IMMUTABLE}
    if tile.level is None:
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=OCTETS, headers=headers)
