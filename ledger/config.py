"""The one config object: what ``auditledger init`` chose for a data directory.

``DIR/config.json`` is written once by ``init``; every later command with ``--data DIR``
reads it, so the backend chosen at init is the backend used. ``AUDITLEDGER_KAFKA`` or
``--kafka`` may point an existing Kafka ledger at another bootstrap address (a broker that
moved), never switch a SQLite ledger to Kafka.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import orjson


class ConfigError(Exception):
    pass


def _env_int(name: str) -> int | None:
    """An optional positive integer from the environment (read by ``init`` only: after that
    config.json holds the value)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be at least 1")
    return value


@dataclass(frozen=True)
class Config:
    data_dir: Path
    backend: str = "sqlite"  # "sqlite" | "kafka"
    kafka_bootstrap: str | None = None
    log_key_name: str = "auditledger"
    kafka_partitions: int = 1
    # Names of the Kafka topics are ``<prefix>.events.v1`` etc. (DESIGN.md: "auditledger").
    # Several ledgers (tests, benchmarks, staging) share one cluster with their own prefix;
    # ``init`` takes it from AUDITLEDGER_KAFKA_TOPIC_PREFIX and config.json keeps it.
    kafka_topic_prefix: str = field(default_factory=lambda: os.environ.get(
        "AUDITLEDGER_KAFKA_TOPIC_PREFIX", "auditledger"))
    # Replication of the topics the ledger creates (existing topics are never changed).
    # None: min(3, brokers) -- 1 on a single broker, 3 on a cluster of three or more.
    # Set it (``init`` takes AUDITLEDGER_KAFKA_REPLICATION_FACTOR) so that creating the
    # topics while a broker is down fails instead of quietly making fewer copies.
    kafka_replication_factor: int | None = field(default_factory=lambda: _env_int(
        "AUDITLEDGER_KAFKA_REPLICATION_FACTOR"))
    # ``min.insync.replicas`` of those topics. None: replication factor - 1 (1 on one
    # broker, 2 on three): with acks=all an acknowledged write is on that many brokers, and
    # the ledger refuses writes rather than keep fewer copies. (env at init:
    # AUDITLEDGER_KAFKA_MIN_INSYNC_REPLICAS)
    kafka_min_insync_replicas: int | None = field(default_factory=lambda: _env_int(
        "AUDITLEDGER_KAFKA_MIN_INSYNC_REPLICAS"))
    # The sequencer's transactional id; None = ``<prefix>.sequencer``. Every sequencer of
    # one ledger MUST use the same id: that is what lets a new one fence an old one.
    kafka_transactional_id: str | None = None
    # "one": one sequencer owns every events partition (transactional id ``kafka_txn_id``).
    # "per-partition": each events partition has its own sequencer, transactional id
    # ``<kafka_txn_id>.<partition>``, and the ``serve`` processes share the partitions
    # through the consumer group ``<prefix>.intake`` (docs/deployment.md). Every writer of
    # a ledger MUST agree on this, so it lives here and not in a ``serve`` flag.
    kafka_sequencers: str = "one"
    # How late an event may arrive: ``occurred_at`` more than this before the ledger's
    # clock is ``clock_skew`` (None: no bound). Bounds what a stolen, revoked key can
    # back-date. Default 3 days: a producer's outage over a long weekend still delivers.
    max_lateness_seconds: int | None = 3 * 86400
    # An import window for history (RFC 3339): while the ledger's clock is before this
    # instant, events of any age are accepted. An admin sets it in config.json before a
    # migration; it closes by itself. None: no window.
    history_import_until: str | None = None
    # Witnesses that cosign this ledger's checkpoints (docs/witnesses.md): each
    # ``{"url": submission prefix, "vkey": the witness's cosigner verifier key}``.
    # ``serve`` sends every new checkpoint to each of them in the background.
    witnesses: list[dict[str, str]] = field(default_factory=list)
    # The key-encryption key that wraps the key store (ledger/kek.py): AUDITLEDGER_KEK,
    # else the output of ``kek_command`` (the KMS hook), else ``kek_file`` (None:
    # DIR/keys/kek, made by init).
    kek_file: str | None = None
    kek_command: str | None = None
    # The key store (sealed-data keys, subject keys): None = DIR/keystore.sqlite; a
    # PostgreSQL conninfo for production. AUDITLEDGER_KEYSTORE_DSN overrides it.
    keystore_dsn: str | None = None
    # Back-pressure (docs/api.md, "Back-pressure"): ``POST /v1/events`` admits at most
    # this many events waiting for or in a group commit; past it a request is answered
    # 503 ``overloaded`` with ``Retry-After: ingest_retry_after_seconds`` at once. Two
    # group commits' worth: an admitted request waits about this / throughput seconds.
    ingest_max_pending_events: int = 4000
    ingest_retry_after_seconds: int = 1

    @property
    def max_lateness(self) -> timedelta | None:
        s = self.max_lateness_seconds
        return None if s is None else timedelta(seconds=s)

    @property
    def import_until(self) -> datetime | None:
        """``history_import_until`` parsed (ConfigError if it is not a valid time)."""
        from ledger.clock import InvalidTime, parse_rfc3339

        if self.history_import_until is None:
            return None
        try:
            return parse_rfc3339(self.history_import_until)
        except InvalidTime as exc:
            raise ConfigError(f"history_import_until: {exc}") from None

    @property
    def config_file(self) -> Path:
        return self.data_dir / "config.json"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def log_key_file(self) -> Path:
        return self.keys_dir / "log.pem"

    @property
    def log_db(self) -> Path:
        return self.data_dir / "ledger.sqlite"

    @property
    def kafka_index_db(self) -> Path:
        """The Kafka backend's local, rebuildable index of its topics."""
        return self.data_dir / "kafka-index.sqlite"

    def kafka_topic(self, name: str) -> str:
        """``events`` -> ``auditledger.events.v1`` (with this ledger's prefix)."""
        return f"{self.kafka_topic_prefix}.{name}.v1"

    @property
    def kafka_txn_id(self) -> str:
        return self.kafka_transactional_id or f"{self.kafka_topic_prefix}.sequencer"

    def kafka_partition_txn_id(self, partition: int) -> str:
        """The transactional id of the sequencer of events partition ``partition``."""
        return f"{self.kafka_txn_id}.{partition}"

    @property
    def per_partition(self) -> bool:
        """Whether each events partition has its own sequencer."""
        if self.kafka_sequencers not in ("one", "per-partition"):
            raise ConfigError(f"kafka_sequencers: {self.kafka_sequencers!r} is neither"
                              " 'one' nor 'per-partition'")
        return self.backend == "kafka" and self.kafka_sequencers == "per-partition"

    @property
    def auth_db(self) -> Path:
        return self.data_dir / "auth.sqlite"

    @property
    def keystore_db(self) -> Path:
        return self.data_dir / "keystore.sqlite"

    @property
    def readmodel_db(self) -> Path:
        return self.data_dir / "readmodels.sqlite"

    def admin_key_file(self, controller: str) -> Path:
        return self.keys_dir / "controllers" / f"{controller}.admin.pem"

    def save(self) -> None:
        doc = {k: v for k, v in asdict(self).items() if k != "data_dir"}
        self.config_file.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, data_dir: Path, kafka: str | None = None) -> Config:
        path = data_dir / "config.json"
        if not path.exists():
            raise ConfigError(f"{data_dir} is not an auditledger data directory (run init)")
        doc = orjson.loads(path.read_bytes())
        cfg = cls(data_dir=data_dir, **doc)
        kafka = kafka or os.environ.get("AUDITLEDGER_KAFKA")
        if kafka:
            if cfg.backend != "kafka":
                raise ConfigError(f"{data_dir} was initialised with the {cfg.backend} log")
            cfg = replace(cfg, kafka_bootstrap=kafka)
        return cfg
