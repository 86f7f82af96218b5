"""The event explorer: a controller's events page by page, and one signed event with its
inclusion proof, which the page checks in the browser (``static/proof.js``).

The proof and the checkpoint are the API's own answers (``GET …/proofs/inclusion/{id}``
and ``GET …/checkpoint`` are called as functions, not re-implemented); the page embeds
them with the stored envelope as JSON data blocks (``<script type="application/json">``,
never executed), and the script recomputes from them what the ledger claims.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from api.routes import proofs
from api.routes.read import decode_cursor, encode_cursor, expand_types, page_events
from api.web.pages import context
from api.web.render import render
from api.web.session import SignedIn, ViewedController, not_found
from ledger.personal import event_view
from ledger.schemas import default_schemas
from ledger.sealing import view

router = APIRouter(include_in_schema=False)
PAGE = 50


def data_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``</script>`` can end
    it early (``<`` written as ``\\u003c``, which JSON.parse reads back as ``<``)."""
    return orjson.dumps(value).decode().replace("<", "\\u003c")


@router.get("/c/{controller}/events", response_class=HTMLResponse)
def events_page(
    request: Request, controller: ViewedController,
    type: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    ctx = context(request, controller)
    ledger = request.app.state.ledger
    try:
        types = expand_types([type]) if type else None
        after = decode_cursor(cursor) if cursor else None
        rows, last = page_events(ledger, controller, after, types, None, None, None, None,
                                 PAGE)
    except ApiError as exc:
        return render(request, "error.html", status=exc.status, **ctx,
                      title="Cannot list these events", detail=exc.detail)
    events = [orjson.loads(r) for r in rows]
    for e in events:  # the state of its sealed personal data, never the plaintext here
        e["personal"] = view(e, ledger.keys)
    return render(request, "events.html", **ctx, title="Events", events=events,
                  type=type, types=sorted(default_schemas().types),
                  next_cursor=encode_cursor(last) if last is not None else None,
                  size=ledger.log.size(controller), first=cursor is None)


@router.get("/c/{controller}/events/{event_id}", response_class=HTMLResponse)
async def event_page(request: Request, controller: ViewedController, key: SignedIn,
                     event_id: Annotated[str, Path(max_length=100)]) -> HTMLResponse:
    ctx = context(request, controller)
    ledger = request.app.state.ledger
    ev = ledger.log.lookup(controller, [event_id]).get(event_id)
    if ev is None or ev.controller != controller:
        raise not_found(f"Event {event_id}")
    proof = await proofs.get_inclusion(request, controller, event_id, ledger)
    cp = await proofs.get_checkpoint(request, controller, ledger)
    envelope = orjson.loads(ev.body)
    check = {**proof, "log_key": cp["log_key"], "origin": cp["origin"]}
    return render(request, "event.html", **ctx, title=f"Event {event_id}", ev=ev,
                  envelope=envelope, proof=proof,
                  personal=event_view(ledger.keys, envelope, key),
                  envelope_json=data_json(envelope), proof_json=data_json(check),
                  pretty=orjson.dumps(envelope, option=orjson.OPT_INDENT_2).decode())
