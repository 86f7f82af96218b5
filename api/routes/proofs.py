"""Checkpoints and RFC 9162 proofs.

Decisions (docs/api.md): an inclusion proof is always against the latest signed
checkpoint; when the event is newer than it, a checkpoint is signed on the spot (the
ledger signs at least every second anyway), so the answer is never "come back later".
Consistency proofs accept any sizes ``1 <= from <= to <= current size``; the caller takes
the roots from checkpoints it holds.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from api.deps import LedgerDep, VisibleController
from api.errors import ApiError, not_found
from api.routes.read import ERRORS
from api.schemas import CheckpointOut, ConsistencyProof, CosignedCheckpointOut, InclusionProof
from ledger.encoding import b64
from ledger.log.base import StoredCheckpoint
from ledger.merkle import consistency_proof, inclusion_proof
from ledger.sequencer import origin
from ledger.service import Ledger

router = APIRouter(tags=["proofs"], responses=ERRORS)


def latest_covering(
    ledger: Ledger, lock: threading.Lock, controller: str, size: int
) -> StoredCheckpoint:
    """The latest checkpoint, signing one first when it does not cover ``size`` leaves."""
    cp = ledger.log.latest_checkpoint(controller)
    if cp is None or cp.size < size:
        with lock:
            ledger.flush()
        cp = ledger.log.latest_checkpoint(controller)
    if cp is None or cp.size < size:  # pragma: no cover - flush always covers the tree
        raise ApiError(503, "unavailable", "no checkpoint covers this event yet")
    return cp


@router.get("/v1/controllers/{controller}/checkpoint", response_model=CheckpointOut,
            summary="The latest signed checkpoint (C2SP signed note)")
async def get_checkpoint(
    request: Request, controller: VisibleController, ledger: LedgerDep
) -> dict[str, Any]:
    cp = latest_covering(ledger, request.app.state.ingest_lock, controller, 1)
    return {
        "controller": controller, "origin": origin(controller), "size": cp.size,
        "root": b64(cp.root), "created_at": cp.created_at, "note": cp.note,
        "log_key": ledger.verifier_key,
    }


@router.get("/v1/controllers/{controller}/checkpoint/cosigned",
            response_model=CosignedCheckpointOut,
            summary="The newest checkpoint witnesses cosigned, with their cosignatures")
async def get_cosigned_checkpoint(controller: VisibleController,
                                  ledger: LedgerDep) -> dict[str, Any]:
    """The newest checkpoint holding at least one cosignature: the note (log signature)
    with the C2SP tlog-cosignature lines appended, as a tlog-witness client would
    assemble it. 404 ``no_cosigned_checkpoint`` while no witness has cosigned yet (none
    configured, or none answered): the plain ``…/checkpoint`` is still there."""
    cp = ledger.log.latest_cosigned(controller)
    if cp is None:
        raise ApiError(404, "no_cosigned_checkpoint",
                       f"no witness has cosigned a checkpoint of {controller} yet")
    lines = ledger.log.cosignatures(controller, cp.size)
    return {
        "controller": controller, "origin": origin(controller), "size": cp.size,
        "root": b64(cp.root), "created_at": cp.created_at, "note": cp.note + "".join(lines),
        "log_key": ledger.verifier_key, "cosignatures": lines,
    }


@router.get("/v1/controllers/{controller}/proofs/inclusion/{event_id}",
            response_model=InclusionProof,
            summary="Inclusion proof of one event in the latest checkpoint")
async def get_inclusion(
    request: Request,
    controller: VisibleController,
    event_id: Annotated[str, Path(max_length=100)],
    ledger: LedgerDep,
) -> dict[str, Any]:
    ev = ledger.log.lookup(controller, [event_id]).get(event_id)
    if ev is None or ev.controller != controller:
        raise not_found(f"event {event_id}")
    cp = latest_covering(ledger, request.app.state.ingest_lock, controller, ev.index + 1)
    proof = inclusion_proof(ledger.log.node_getter(controller), ev.index, cp.size)
    return {
        "event_id": ev.event_id, "index": ev.index, "tree_size": cp.size,
        "leaf_hash": b64(ev.leaf_hash), "proof": [b64(h) for h in proof],
        "checkpoint": cp.note,
    }


@router.get("/v1/controllers/{controller}/proofs/consistency",
            response_model=ConsistencyProof,
            summary="Consistency proof between two tree sizes")
async def get_consistency(
    request: Request,
    controller: VisibleController,
    ledger: LedgerDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=2**62)],
    to: Annotated[int | None, Query(ge=1, le=2**62,
                                    description="Default: the latest checkpoint's size.")]
    = None,
) -> dict[str, Any]:
    if to is None:
        to = latest_covering(ledger, request.app.state.ingest_lock, controller, 1).size
    size = ledger.log.size(controller)
    if not from_ <= to <= size:
        raise ApiError(422, "invalid_range",
                       f"need 1 <= from <= to <= {size} (the log's size); got {from_}, {to}")
    proof = consistency_proof(ledger.log.node_getter(controller), from_, to)
    return {"from": from_, "to": to, "proof": [b64(h) for h in proof]}
