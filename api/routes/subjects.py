"""Data subjects: look-up by identifier or pseudonym, erasure, and data keys for sealing.

``GET|POST …/subjects/lookup``, ``GET …/subjects/{subject}`` and ``POST …/subjects/erase``
are for ``admin`` keys (a DPO's tool: they link a person to records, or destroy keys);
``POST …/subjects/data-key`` also for a ``producer`` key of that controller (what a remote
producer seals with). An identifier never travels in a URL (it would land in access logs):
``GET`` takes it in the ``X-Subject-Identifier`` header, ``POST`` in the body.

Tenant isolation: the controller is resolved before the role is checked, so a key that
may not see the controller gets the same 404 as for one that does not exist, and a
pseudonym of another controller is the same 404 as one nobody has. Routes call the
``Ledger``'s methods (ledger/service.py); an erasure appends under the ingest lock (one
writer), its checks run before it, outside.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from pydantic import BaseModel, Field

from api.auth import require_role
from api.deps import CurrentKey, LedgerDep, controller_exists
from api.errors import ApiError, JSONBytes, not_found
from api.routes.webhooks import SharedAllowRoute
from api.schemas import Error
from ledger.apikeys import ApiKey
from ledger.encoding import b64url
from ledger.envelope import IdentifierError
from ledger.subjects import SubjectError

PSN_PATTERN = r"^psn:[A-Za-z0-9_-]{43}$"
ID_PATTERN = r"^[^\s]+$"

# GET and POST …/subjects/lookup are two routes on one path: a 405 names both in Allow.
router = APIRouter(tags=["subjects"], route_class=SharedAllowRoute, responses={
    400: {"model": Error}, 401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error},
    422: {"model": Error}})

#: Subject errors as HTTP answers: status, and the stable code as the body's ``code``.
STATUS = {"unknown_controller": 404, "unknown_subject": 404, "already_erased": 409,
          "request_mismatch": 409}


# -- wire models ---------------------------------------------------------------------------


class Record(BaseModel):
    event_id: str
    type: str
    occurred_at: str
    index: int = Field(description="Leaf index in the controller's Merkle log.")


class KeyState(BaseModel):
    live: list[str] = Field(description="Data keys (kids) that still open sealed fields.")
    destroyed: list[str] = Field(description="Data keys destroyed by an erasure.")
    erased_at: str | None = Field(description="When the subject was last erased (RFC 3339).")


class SubjectOut(BaseModel):
    controller: str
    subject: str = Field(description="The pseudonym, psn:…")
    known: bool = Field(description="Whether the ledger holds any record or key of it.")
    records: list[Record] = Field(description="Events with this subject, in log order.")
    keys: KeyState


class LookupIn(BaseModel):
    identifier: str = Field(min_length=1, max_length=320,
                            description="E-mail address or phone number (not stored).")


class EraseIn(BaseModel):
    subject: str = Field(pattern=PSN_PATTERN, description="The pseudonym to erase.")
    request_id: str | None = Field(None, min_length=1, max_length=128, pattern=ID_PATTERN,
                                   description="The rights request (right erasure) it "
                                   "fulfils; refused or withdrawn ones are refused.")
    reason: str | None = Field(None, min_length=1, max_length=4000,
                               description="Why (no personal data).")


class EraseOut(BaseModel):
    event_id: str = Field(description="The subject.erased event.")
    status: str
    index: int
    leaf_hash: str
    controller: str
    subject: str
    keys_destroyed_at: str
    key_ids: list[str] = Field(description="The data keys this erasure destroyed.")
    request_id: str | None
    keys: KeyState


class DataKeyIn(BaseModel):
    subject: str = Field(pattern=PSN_PATTERN)


class DataKeyOut(BaseModel):
    kid: str = Field(description="Key id to put in sealed.kid.")
    key: str = Field(description="The 32-byte AES-256-GCM key, unpadded base64url.")


# -- dependencies --------------------------------------------------------------------------


async def subject_controller(
    controller: Annotated[str, Path(description="Controller id, e.g. NO-921119224.",
                                    max_length=64)],
    key: CurrentKey,
    ledger: LedgerDep,
) -> str:
    """The controller, if this key may see it (else the 404 of a missing one)."""
    if not key.may_see(controller) or not controller_exists(ledger, controller):
        raise not_found(f"controller {controller}")
    return controller


Controller = Annotated[str, Depends(subject_controller)]


def _admin(key: ApiKey) -> None:
    require_role(key, ("admin",))


def _call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SubjectError as exc:
        if exc.code == "unknown_controller":
            raise not_found(f"controller {args[0]}") from None
        raise ApiError(STATUS.get(exc.code, 422), exc.code, exc.detail) from None
    except IdentifierError as exc:
        raise ApiError(422, "invalid_request", f"identifier: {exc}") from None


def _subject_answer(doc: dict[str, Any]) -> JSONBytes:
    return JSONBytes(doc, headers={"Cache-Control": "no-store"})


# -- routes --------------------------------------------------------------------------------

LOOKUP = ("The pseudonym of an identifier (HMAC-SHA256 under the controller's subject key; "
          "an e-mail lower-cased and trimmed, a phone number in E.164, one without + read "
          "in the controller's country), the subject's records and its key state. A person "
          "without records is `known: false` with no records. The identifier is not kept.")


@router.get("/v1/controllers/{controller}/subjects/lookup", response_model=SubjectOut,
            summary="Find a subject by e-mail or phone (identifier in a header)",
            description=LOOKUP + " Admin only.")
def get_lookup(
    controller: Controller, key: CurrentKey, ledger: LedgerDep,
    identifier: Annotated[str, Header(alias="X-Subject-Identifier", min_length=1,
                                      max_length=320,
                                      description="E-mail address or phone number.")],
) -> JSONBytes:
    _admin(key)
    return _subject_answer(_call(ledger.lookup_subject, controller, identifier))


@router.post("/v1/controllers/{controller}/subjects/lookup", response_model=SubjectOut,
             summary="Find a subject by e-mail or phone (identifier in the body)",
             description=LOOKUP + " Admin only.")
def post_lookup(controller: Controller, key: CurrentKey, ledger: LedgerDep,
                body: Annotated[LookupIn, Body()]) -> JSONBytes:
    _admin(key)
    return _subject_answer(_call(ledger.lookup_subject, controller, body.identifier))


@router.post("/v1/controllers/{controller}/subjects/erase", response_model=EraseOut,
             summary="Erase a subject: record subject.erased and destroy its keys",
             description="Signed with the controller's admin key; afterwards the subject's "
             "sealed fields read as erased and every proof still verifies. Errors: 404 "
             "`unknown_subject`, 409 `already_erased`, 409 `request_mismatch` (the request "
             "is not an erasure request of this subject, or was refused or withdrawn). "
             "Admin only.",
             responses={409: {"model": Error}})
def post_erase(request: Request, controller: Controller, key: CurrentKey,
               ledger: LedgerDep, body: Annotated[EraseIn, Body()]) -> JSONBytes:
    _admin(key)
    doc = _call(ledger.erase_subject, controller, body.subject, body.request_id,
                body.reason, request.app.state.ingest_lock)
    return JSONBytes(doc)


@router.post("/v1/controllers/{controller}/subjects/data-key", response_model=DataKeyOut,
             summary="The subject's data key, to seal personal data with",
             description="The live AES-256-GCM data key of the subject (made on first use, "
             "and anew after an erasure). For a producer key of this controller, or admin. "
             "Seal with `ledger.sealing.seal` (AAD: controller and event id).")
def post_data_key(controller: Controller, key: CurrentKey, ledger: LedgerDep,
                  body: Annotated[DataKeyIn, Body()]) -> JSONBytes:
    require_role(key, ("producer", "admin"))
    kid, raw = _call(ledger.data_key, controller, body.subject)
    return JSONBytes({"kid": kid, "key": b64url(raw)}, headers={"Cache-Control": "no-store"})


@router.get("/v1/controllers/{controller}/subjects/{subject}", response_model=SubjectOut,
            summary="A subject's records and key state, by pseudonym",
            description="404 for a pseudonym with no record and no key here (another "
            "controller's included). Admin only.")
def get_subject(controller: Controller, key: CurrentKey, ledger: LedgerDep,
                subject: Annotated[str, Path(pattern=PSN_PATTERN)]) -> JSONBytes:
    _admin(key)
    doc = _call(ledger.subject, controller, subject)
    if not doc["known"]:
        raise not_found(f"subject {subject}")
    return _subject_answer(doc)
