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


class CosignedCheckpointOut(CheckpointOut):
    note: str = Field(description="The C2SP signed note with the witnesses' C2SP "
                      "tlog-cosignature lines appended after the log's signature.")
    cosignatures: list[str] = Field(description="The cosignature lines alone, as kept.")


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


class WorkerState(BaseModel):
    """``serve``'s projections worker, as its supervisor sees it (api/supervisor.py)."""

    alive: bool
    pid: int | None = None
    restarts: int = Field(description="Times the supervisor started it again.")
    last_exit: int | None = Field(None, description="Exit status of the last worker that "
                                  "ended (negative: killed by that signal).")
    last_error: str | None = Field(None, description="The worker's last stderr line.")
    restart_in: float | None = Field(None, description="Backoff before the next start, "
                                     "while it is dead.")


class ReadSideError(BaseModel):
    """The last failed projection run (``ReadSide.status()``), kept after recovery."""

    at: str | None = Field(None, description="When it failed (RFC 3339 UTC).")
    error: str = Field(description="Exception type and message.")
    positions: dict[str, int] | None = Field(None, description="Where the run stood.")
    source: str = Field(description="`worker` (recorded by the worker in the store) or "
                        "`read_side` (the store or log could not be read just now).")


class ProjectionsReady(ReadyCheck):
    caught_up: bool | None = Field(None, description="Nothing in the log is unprojected.")
    last_error: ReadSideError | None = Field(None, description="The read side's last "
                                             "failure.")
    worker: WorkerState | None = Field(None, description="Null when no separate worker "
                                       "runs (projections applied in-process).")


class SignaturesReady(BaseModel):
    """The Ed25519 verification pool (ledger/verifier.py)."""

    ok: bool
    workers: int = Field(description="Pool size (0: verified in the API process).")
    alive: int = Field(description="Live workers (started as batches arrive).")
    rebuilds: int = Field(description="Broken pools replaced since start.")
    last_error: str | None = None


class WitnessState(BaseModel):
    """One configured witness as the background sender sees it (ledger/witness.py)."""

    url: str
    name: str
    ok: bool = Field(description="False after a failed attempt until the next success.")
    cosigned: dict[str, int] = Field(description="Controller -> newest size it cosigned.")
    failures: int = Field(description="Failed attempts since the process started.")
    last_error: str | None = None


class SequencerState(BaseModel):
    """Who sequences which events partition (Kafka ledgers; docs/deployment.md)."""

    mode: Literal["one", "per-partition"]
    partitions: int = Field(description="Partitions of the events topic.")
    sequencing: list[int] | Literal["all"] = Field(
        description="Events partitions this process sequences now ('all': the one "
        "sequencer of a single-sequencer ledger; []: none, e.g. an API replica).")
    group: str | None = Field(None, description="The sequencer group (per-partition).")
    member: str | None = Field(None, description="This process's name in the group.")
    owners: dict[str, str | None] | None = Field(
        None, description="Events partition -> the member sequencing it (None: nobody "
        "now, e.g. during a rebalance). Writes for it are routed there via the intake "
        "topic.")


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    log: ReadyCheck
    projections: ProjectionsReady
    signatures: SignaturesReady
    sequencer: SequencerState | None = Field(
        None, description="Kafka ledgers: reported, not judged (a process may sequence "
        "no partition and still serve reads and route writes).")
    witnesses: list[WitnessState] = Field(
        default_factory=list, description="Reported, not judged: a witness outage does "
        "not make the ledger unready (cosigning catches up when it answers again).")


class SchemaEntry(BaseModel):
    """One event type of the catalogue."""

    type: str = Field(description="The envelope's `type`, e.g. `consent.given`.")
    description: str = Field(description="What the event records.")
    required: list[str] = Field(description="Fields `data` must have.")
    source: str | None = Field(None, description="The law it records (articles cited).")
    schema_url: str = Field(description="Its JSON Schema: `GET /v1/schemas/{type}`.")


class Catalogue(BaseModel):
    """`GET /v1/schemas`: every event type the ledger takes."""

    spec: str = Field(description="The envelope's `spec`, `auditledger/1`.")
    envelope_url: str = Field(description="The envelope's JSON Schema.")
    types: list[SchemaEntry]
