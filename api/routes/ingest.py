"""``POST /v1/events``: one envelope or a JSON array of up to 1000.

The body is read here (not by FastAPI) so that its size is bounded while it streams in and
malformed JSON gets the ingest code ``malformed_json`` rather than a generic 422.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import MetricsDep, Writer
from api.errors import ApiError, JSONBytes
from api.schemas import Error, EventResult
from ledger.apikeys import ApiKey
from ledger.codes import MAX_BATCH, Code
from ledger.ingest import Staged
from ledger.service import Ledger
from ledger.strictjson import duplicate_name, split_array

log = logging.getLogger(__name__)

router = APIRouter(tags=["ingest"])

MAX_BODY_BYTES = 16 * 1024 * 1024

_BODY_SCHEMA = {
    "oneOf": [
        {"$ref": "#/components/schemas/Envelope"},
        {"type": "array", "maxItems": MAX_BATCH,
         "items": {"$ref": "#/components/schemas/Envelope"}},
    ]
}


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, Code.TOO_LARGE.value, f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, Code.TOO_LARGE.value, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse(body: bytes) -> tuple[list[Any], bool]:
    """The events of a request and whether it was one bare envelope.

    Fast path: orjson reads the body, and one scan for duplicate member names (I-JSON)
    finds none. Otherwise (a duplicate name somewhere, nesting beyond orjson's limit) the
    array is split into its elements' raw bytes and ingest judges each alone: the bad
    one is rejected, the others keep their answers."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        parts = split_array(body) if "depth limit" in str(exc) else None
        if parts is None:
            if "depth limit" in str(exc) and body.lstrip()[:1] == b"{":
                return [body], True  # ingest answers it: schema_violation, too deep
            raise ApiError(400, Code.MALFORMED_JSON.value,
                           f"body is not JSON: {exc}") from None
        return _checked_count(parts), False
    if duplicate_name(body, doc) is not None:
        if isinstance(doc, dict):
            return [body], True  # ingest answers it: malformed_json, with the name
        parts = split_array(body) if isinstance(doc, list) else None
        if parts is not None:
            return _checked_count(parts), False
    if isinstance(doc, dict):
        return [doc], True
    if not isinstance(doc, list):
        raise ApiError(422, Code.SCHEMA_VIOLATION.value,
                       "body must be an event envelope or an array of envelopes")
    if len(doc) > MAX_BATCH:
        raise ApiError(422, "batch_too_large",
                       f"{len(doc)} events in one request; at most {MAX_BATCH}")
    return doc, False


def _checked_count(parts: list[bytes]) -> list[Any]:
    if len(parts) > MAX_BATCH:
        raise ApiError(422, "batch_too_large",
                       f"{len(parts)} events in one request; at most {MAX_BATCH}")
    return list(parts)


def _controller_of(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("controller")
    try:  # a raw element of the slow path: its controller, if it has a readable one
        doc = orjson.loads(item)
    except orjson.JSONDecodeError:
        return None
    return doc.get("controller") if isinstance(doc, dict) else None


def foreign(item: Any, key: ApiKey) -> dict[str, Any] | None:
    """A producer key may only write for its own controller. An event for another one
    gets the answer a controller that does not exist gets, so a key learns nothing about
    other tenants."""
    if key.role == "admin":
        return None
    controller = _controller_of(item)
    if not isinstance(controller, str) or key.may_see(controller):
        return None
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return {
        "event_id": event_id if isinstance(event_id, str) else None,
        "status": "rejected",
        "code": Code.UNKNOWN_CONTROLLER.value,
        "detail": f"controller {controller} is not registered",
    }


class GroupCommit:
    """Coalesces concurrent requests into one ledger batch (group commit), in a
    two-stage pipeline: while one group commits, the next is prepared.

    A thread whose request is waiting and finds no group being prepared becomes that
    stage's leader: it takes every waiting request (up to ``max_events`` events), runs
    ``ledger.prepare`` (parsing, schema, canonical bytes; signatures start on the
    verifier's workers) without the ingest lock, then waits for the lock and runs
    ``ledger.commit`` (signature answers, idempotency, one append and fsync). It lets
    the next leader start preparing as soon as it holds the lock, so parsing group N+1
    overlaps group N's signature checks and fsync, and groups commit in the order they
    were taken. Semantics are those of the requests submitted one after another in
    arrival order (idempotency and conflicts included): ingest treats a batch exactly
    like its events in sequence, and a group prepared against a registry that changed
    meanwhile is checked again from the start (``Ingestor.commit``).
    """

    def __init__(self, ledger: Ledger, lock: threading.Lock, max_events: int = 2000) -> None:
        self.ledger, self.lock, self.max_events = ledger, lock, max_events
        self._cv = threading.Condition()
        self._waiting: list[tuple[list[Any], dict[str, Any]]] = []
        self._preparing = False

    def submit(self, batch: list[Any]) -> list[Any]:
        slot: dict[str, Any] = {"done": False, "taken": False}
        with self._cv:
            self._waiting.append((batch, slot))
            while not slot["taken"] and self._preparing:
                self._cv.wait()
            if not slot["taken"]:
                self._lead()
            while not slot["done"]:
                self._cv.wait()
        if "error" in slot:
            raise slot["error"]
        return slot["results"]

    def _take(self) -> list[tuple[list[Any], dict[str, Any]]]:
        group: list[tuple[list[Any], dict[str, Any]]] = []
        size = 0
        while self._waiting and (not group or
                                 size + len(self._waiting[0][0]) <= self.max_events):
            group.append(self._waiting.pop(0))
            group[-1][1]["taken"] = True
            size += len(group[-1][0])
        return group

    def _lead(self) -> None:
        """Prepare and commit one group. Called with ``_cv`` held; returns with it held.
        An error the group's requests cannot be answered without (an interrupt) becomes
        every one's answer, so none of them waits for ever."""
        self._preparing = True
        group = self._take()
        self._cv.release()
        handed_on = False
        try:
            staged = self._prepare(group)
            with self.lock:  # one writer: the ingestor's registry view
                with self._cv:
                    self._preparing, handed_on = False, True
                    self._cv.notify_all()  # the next group is prepared while this commits
                self._run(group, staged)
        except BaseException as exc:
            for _, slot in group:
                if not slot["done"]:
                    slot.update(error=exc, done=True)
        finally:
            self._cv.acquire()
            if not handed_on:
                self._preparing = False
            self._cv.notify_all()

    def _prepare(self, group: list[tuple[list[Any], dict[str, Any]]]) -> Staged | None:
        try:
            return self.ledger.prepare([item for batch, _ in group for item in batch])
        except Exception:  # then submit checks it all again, in order, under the lock
            log.exception("preparing a group of %d requests failed", len(group))
            return None

    def _run(self, group: list[tuple[list[Any], dict[str, Any]]],
             staged: Staged | None) -> None:
        try:
            if staged is None:
                results = self.ledger.submit([item for batch, _ in group for item in batch])
            else:
                results = self.ledger.commit(staged)
        except Exception as exc:
            if len(group) == 1:
                group[0][1].update(error=exc, done=True)
                return
            # One request must not fail the others merged with it: each is submitted
            # alone (a submit is all-or-nothing, so nothing was half-stored; what was
            # stored before the failure answers ``duplicate``).
            log.exception("group commit of %d requests failed; submitting each alone",
                          len(group))
            for part in group:
                self._run([part], None)
            return
        at = 0
        for batch, slot in group:
            slot.update(results=results[at : at + len(batch)], done=True)
            at += len(batch)


def submit(group: GroupCommit, items: list[Any], key: ApiKey) -> list[dict]:
    results: list[dict[str, Any] | None] = [foreign(item, key) for item in items]
    todo = [i for i, r in enumerate(results) if r is None]
    # Non-objects go in as bytes so ingest answers them with its own schema_violation;
    # raw elements of the slow path (bytes) go in as they are.
    batch = [items[i] if isinstance(items[i], dict | bytes) else orjson.dumps(items[i])
             for i in todo]
    if batch:
        done = group.submit(batch)
        for i, res in zip(todo, done, strict=True):
            results[i] = res.to_dict()
    return results  # type: ignore[return-value]


def _status(result: dict[str, Any]) -> int:
    if result["status"] == "accepted":
        return 201
    if result["status"] == "duplicate":
        return 200
    return 409 if result.get("code") == Code.EVENT_ID_CONFLICT.value else 422


@router.post(
    "/v1/events",
    summary="Submit one signed event or a batch",
    description=(
        "Body: one envelope → one result object (201 accepted, 200 duplicate, 422 "
        "rejected, 409 `event_id_conflict`); or a JSON array of up to "
        f"{MAX_BATCH} envelopes → 200 with one result per event, in order. Good events "
        "are kept when others in the batch are rejected. A producer key writes only for "
        "its own controller; an event for any other is rejected `unknown_controller`. Past "
        "its capacity the API answers 503 `overloaded` with `Retry-After` at once."
    ),
    response_model=EventResult | list[EventResult],
    status_code=200,
    responses={
        201: {"model": EventResult, "description": "The one event was accepted."},
        400: {"model": Error, "description": "`malformed_json`"},
        401: {"model": Error}, 403: {"model": Error},
        409: {"model": EventResult, "description": "`event_id_conflict` (single event)"},
        413: {"model": Error, "description": "`too_large`: the body exceeds the limit"},
        503: {"model": Error, "description": "`overloaded`: ingest is at capacity; "
              "retry after the `Retry-After` seconds (nothing of the request was stored)"},
        422: {"model": EventResult | Error,
              "description": "The one event was rejected, the body is no envelope, or "
              "`batch_too_large` (more than 1000 events)"},
    },
    openapi_extra={"requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _BODY_SCHEMA}},
    }},
)
async def post_events(
    request: Request, key: Writer, metrics: MetricsDep
) -> JSONBytes:
    admission = request.app.state.admission
    if admission.full():
        admission.shed()  # 503 before the body is read or parsed: shedding stays cheap
    body = await read_body(request, request.app.state.max_body_bytes)
    items, single = parse(body)
    admission.admit(len(items))
    try:
        results = await run_in_threadpool(submit, request.app.state.group_commit, items, key)
    finally:
        admission.release(len(items))
    metrics.ingested(results)
    if single:
        return JSONBytes(results[0], status_code=_status(results[0]))
    return JSONBytes(results)
