"""Stable rejection codes (DESIGN.md). Clients branch on these strings: never rename one."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_CONTROLLER = "unknown_controller"
    UNKNOWN_PRODUCER = "unknown_producer"
    PRODUCER_REVOKED = "producer_revoked"
    TYPE_NOT_ALLOWED = "type_not_allowed"
    BAD_SIGNATURE = "bad_signature"
    CLOCK_SKEW = "clock_skew"
    TOO_LARGE = "too_large"
    EVENT_ID_CONFLICT = "event_id_conflict"
    # A sealed field whose kid is not a data key of that controller and subject, or that
    # does not decrypt under it (issue #18; docs/erasure.md).
    SEALED_INVALID = "sealed_invalid"


class CodedError(Exception):
    """An error with a stable ``code`` (clients and the CLI branch on it) and a one-line
    ``detail``; ``str()`` is ``"code: detail"``, what the CLI prints after ``error:``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


MAX_EVENT_BYTES = 64 * 1024
#: The stored event (its canonical bytes with ``sig``) is also a C2SP tlog-tiles entry,
#: whose length prefix is a uint16: at most 65,535 bytes.
MAX_ENTRY_BYTES = 0xFFFF
MAX_CLOCK_SKEW_SECONDS = 300
MAX_BATCH = 1000
