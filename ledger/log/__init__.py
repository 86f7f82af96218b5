"""The log of record: one interface, two backends (embedded SQLite, Kafka)."""

from ledger.log.base import Log, Prepared, StaleLog, StoredCheckpoint, StoredEvent

__all__ = ["Log", "Prepared", "StaleLog", "StoredCheckpoint", "StoredEvent"]
