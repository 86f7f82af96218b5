"""A ledger opened from its data directory: config, keys, log backend and ingest.

This is what the CLI, the API and the benchmarks hold; routes and commands call its
methods and never reach into the log directly for writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.apikeys import ApiKeyStore
from ledger.checkpoint import verifier_key
from ledger.clock import Clock, SystemClock
from ledger.config import Config, ConfigError
from ledger.envelope import complete
from ledger.ingest import Ingestor, Result
from ledger.log.base import Log
from ledger.registry import ADMIN
from ledger.schemas import default_schemas
from ledger.sequencer import CheckpointSigner
from ledger.signing import (
    generate_key,
    load_private_key,
    public_key_bytes,
    public_key_text,
    save_private_key,
)
from ledger.verifier import Verifier


def init_data_dir(
    data_dir: Path, kafka: str | None = None, log_key_name: str = "auditledger"
) -> tuple[Config, str]:
    """Create a new ledger; returns its config and the admin API key (shown once)."""
    if (data_dir / "config.json").exists():
        raise ConfigError(f"{data_dir} already holds a ledger")
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = Config(
        data_dir=data_dir,
        backend="kafka" if kafka else "sqlite",
        kafka_bootstrap=kafka,
        log_key_name=log_key_name,
    )
    log_key = generate_key()
    save_private_key(log_key, cfg.log_key_file)
    (cfg.keys_dir / "log.pub").write_text(
        verifier_key(log_key_name, public_key_bytes(log_key)) + "\n"
    )
    cfg.save()
    keys = ApiKeyStore(cfg.auth_db)
    token, _ = keys.create("admin")
    keys.close()
    return cfg, token


def open_log(cfg: Config, signer: CheckpointSigner, clock: Clock) -> Log:
    if cfg.backend == "sqlite":
        from ledger.log.sqlite import SQLiteLog

        return SQLiteLog(cfg.log_db, signer, clock)
    if cfg.backend == "kafka":
        from ledger.log.kafka import KafkaLog

        return KafkaLog(cfg, signer, clock)
    raise ConfigError(f"unknown log backend {cfg.backend!r}")


class Ledger:
    def __init__(
        self,
        cfg: Config,
        clock: Clock | None = None,
        verifier_workers: int | None = None,
        verifier_main_share: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.signer = CheckpointSigner(load_private_key(cfg.log_key_file), cfg.log_key_name)
        self.log = open_log(cfg, self.signer, self.clock)
        self.verifier = Verifier(verifier_workers, verifier_main_share)
        self.ingestor = Ingestor(self.log, default_schemas(), self.clock, self.verifier,
                                 max_lateness=cfg.max_lateness,
                                 import_until=cfg.import_until)

    @classmethod
    def open(cls, data_dir: Path, kafka: str | None = None, **kw: Any) -> Ledger:
        return cls(Config.load(data_dir, kafka), **kw)

    @property
    def verifier_key(self) -> str:
        """The log key as a signed-note verifier key: what auditors pin."""
        return self.signer.verifier_key

    @property
    def registry(self):  # type: ignore[no-untyped-def]
        return self.ingestor.registry

    def submit(self, items: Sequence[bytes | dict[str, Any]]) -> list[Result]:
        return self.ingestor.submit(items)

    def flush(self) -> None:
        """Sign a checkpoint for every tree that grew, now."""
        self.log.checkpoint_due(force=True)

    # -- administration, signed with the controller's admin key held in DIR/keys -------

    def _admin_submit(
        self, controller: str, type_: str, data: dict[str, Any], at: str | None = None
    ) -> Result:
        key_file = self.cfg.admin_key_file(controller)
        if type_ == "controller.registered" and not key_file.exists():
            save_private_key(generate_key(), key_file)
        if not key_file.exists():
            raise ConfigError(f"no admin key for controller {controller} in this data dir")
        key = load_private_key(key_file)
        if type_ == "controller.registered":
            data = {**data, "admin_public_key": public_key_text(key)}
        partial: dict[str, Any] = {"type": type_, "controller": controller, "data": data}
        if at is not None:
            partial["occurred_at"] = at
        env = complete(partial, key, ADMIN, self.clock)
        (result,) = self.submit([env])
        return result

    def register_controller(
        self, controller: str, data: dict[str, Any], at: str | None = None
    ) -> Result:
        return self._admin_submit(controller, "controller.registered", data, at)

    def register_producer(
        self,
        controller: str,
        producer: str,
        public_key: str,
        types: Sequence[str],
        at: str | None = None,
    ) -> Result:
        data = {"producer_id": producer, "public_key": public_key, "types": list(types)}
        return self._admin_submit(controller, "producer.registered", data, at)

    def revoke_producer(self, controller: str, producer: str, revoked_at: str) -> Result:
        data = {"producer_id": producer, "revoked_at": revoked_at}
        return self._admin_submit(controller, "producer.revoked", data)

    def close(self) -> None:
        self.flush()
        self.verifier.close()
        self.log.close()
