"""Wire models: what the API accepts and returns, separate from storage.

Nothing here is a storage row: the log's ``StoredEvent`` and the API key records never
serialise directly, so a new column can never leak (a key hash, say).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Error(BaseModel):
    """Every non-2xx answer."""

    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    detail: str = Field(description="Human-readable explanation.")


class EventResult(BaseModel):
    """Per-event answer of `POST /v1/events`."""

    event_id: str | None = Field(description="The event's id, when one could be read.")
    status: Literal["accepted", "duplicate", "rejected"]
    code: str | None = Field(None, description="Rejection code (status `rejected`).")
    detail: str | None = None
    index: int | None = Field(None, description="Leaf index in the controller's Merkle log.")
    leaf_hash: str | None = Field(None, description="Base64 SHA-256 leaf hash.")
    controller: str | None = None


class EventRecord(BaseModel):
    """A stored event: the signed envelope plus what the ledger added outside it."""

    model_config = ConfigDict(extra="allow")

    spec: str
    event_id: str
    type: str
    controller: str
    producer: str
    occurred_at: str
    data: dict[str, Any]
    sig: str
    subject: str | None = None
    received_at: str
    index: int
    leaf_hash: str


class EventPage(BaseModel):
    items: list[EventRecord]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null when the log was read to its "
        "end at the time of the request."
    )


class Page(BaseModel):
    """A page of read-model rows (field names as DESIGN.md gives them)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


class ControllerInfo(BaseModel):
    controller: str
    name: str | None = None
    country: str | None = None
    timezone: str | None = None
    size: int = Field(description="Events in the controller's log.")
    checkpoint_size: int = Field(description="Tree size of the latest signed checkpoint.")


class ControllerList(BaseModel):
    items: list[ControllerInfo]


class CheckpointOut(BaseModel):
    controller: str
    origin: str
    size: int
    root: str = Field(description="Base64 root hash.")
    created_at: str
    note: str = Field(description="The C2SP signed note, verifiable with the log key.")
    log_key: str = Field(description="The log's signed-note verifier key.")


class InclusionProof(BaseModel):
    event_id: str
    index: int
    tree_size: int
    leaf_hash: str
    proof: list[str] = Field(description="RFC 9162 inclusion path, base64 hashes.")
    checkpoint: str = Field(description="Signed note of the checkpoint at `tree_size`.")


class ConsistencyProof(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    proof: list[str] = Field(description="RFC 9162 consistency proof, base64 hashes.")


class Health(BaseModel):
    status: Literal["ok"]


class ReadyCheck(BaseModel):
    ok: bool
    detail: str | None = None
    lag: int | None = Field(None, description="Events in the log not yet projected.")


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    log: ReadyCheck
    projections: ReadyCheck
