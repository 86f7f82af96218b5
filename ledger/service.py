"""A ledger opened from its data directory: config, keys, log backend and ingest.

This is what the CLI, the API and the benchmarks hold; routes and commands call its
methods and never reach into the log directly for writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from ledger.apikeys import ApiKeyStore
from ledger.checkpoint import verifier_key
from ledger.clock import Clock, SystemClock, format_rfc3339
from ledger.config import Config, ConfigError
from ledger.envelope import complete, pseudonym
from ledger.ingest import Ingestor, Result, Staged
from ledger.kek import ensure_kek
from ledger.keystore import KeyStore, apply_erasure, open_keystore, reapply_erasures
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
from ledger.subjects import (
    SubjectError,
    check_erasable,
    check_request,
    key_state,
    records,
)
from ledger.verifier import Verifier


def init_data_dir(
    data_dir: Path, kafka: str | None = None, log_key_name: str = "auditledger",
    partitions: int = 1, sequencers: str = "one",
) -> tuple[Config, str]:
    """Create a new ledger; returns its config and the admin API key (shown once).
    ``partitions`` and ``sequencers`` only mean something on Kafka (config.py)."""
    if (data_dir / "config.json").exists():
        raise ConfigError(f"{data_dir} already holds a ledger")
    if partitions < 1:
        raise ConfigError("--partitions must be at least 1")
    cfg = Config(
        data_dir=data_dir,
        backend="kafka" if kafka else "sqlite",
        kafka_bootstrap=kafka,
        log_key_name=log_key_name,
        kafka_partitions=partitions,
        kafka_sequencers=sequencers,
    )
    cfg.per_partition  # noqa: B018 - refuses an unknown mode before anything is written
    data_dir.mkdir(parents=True, exist_ok=True)
    log_key = generate_key()
    save_private_key(log_key, cfg.log_key_file)
    (cfg.keys_dir / "log.pub").write_text(
        verifier_key(log_key_name, public_key_bytes(log_key)) + "\n"
    )
    cfg.save()
    ensure_kek(cfg)
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
        # The key store opens before anything is read or written: a wrong KEK stops the
        # ledger here (kek_mismatch), and erasures a restored backup undid are redone.
        self.keys: KeyStore = open_keystore(cfg, clock=self.clock)
        reapply_erasures(self.log, self.keys)
        self.verifier = Verifier(verifier_workers, verifier_main_share)
        self.ingestor = Ingestor(self.log, default_schemas(), self.clock, self.verifier,
                                 max_lateness=cfg.max_lateness,
                                 import_until=cfg.import_until, keystore=self.keys)
        # Set by ``serve`` on a per-partition Kafka ledger (ledger/routing.py): events of
        # partitions another process sequences go through the intake topic.
        self.router: Any = None

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
        if self.router is not None:
            return self.router.submit(items, self.ingestor.submit)
        return self.ingestor.submit(items)

    def prepare(self, items: Sequence[bytes | dict[str, Any]]) -> Staged:
        """``submit`` in two steps: this one needs no lock (``Ingestor.prepare``). A
        routed ledger (a sequencer per partition) checks everything in ``commit``."""
        if self.router is not None:
            return Staged(items, self.ingestor.epoch, serial=True)
        return self.ingestor.prepare(items)

    def commit(self, staged: Staged) -> list[Result]:
        """The second step, under the ingest lock; the results ``submit`` would give."""
        if self.router is not None:
            return self.submit(staged.items)
        return self.ingestor.commit(staged)

    def flush(self) -> None:
        """Sign a checkpoint for every tree that grew, now."""
        self.log.checkpoint_due(force=True)

    # -- administration, signed with the controller's admin key held in DIR/keys -------

    def _admin_submit(
        self, controller: str, type_: str, data: dict[str, Any], at: str | None = None,
        subject: str | None = None,
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
        if subject is not None:
            partial["subject"] = subject
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

    # -- data subjects (docs/erasure.md) ----------------------------------------------

    def _known_controller(self, controller: str) -> None:
        if controller not in self.registry.controllers:
            raise SubjectError("unknown_controller", f"controller {controller} is not "
                               "registered")

    def subject(self, controller: str, subject: str) -> dict[str, Any]:
        """A subject's records (its events: id, type, occurred_at, index) and key state
        (``live``/``destroyed`` kids, ``erased_at``); ``known`` says whether there is any."""
        self._known_controller(controller)
        found = records(self.log, controller, subject)
        state = self.keys.subject_state(controller, subject)
        return {"controller": controller, "subject": subject,
                "known": bool(found) or state.known,
                "records": [r.to_dict() for r in found], "keys": key_state(state)}

    def lookup_subject(self, controller: str, identifier: str) -> dict[str, Any]:
        """The pseudonym of ``identifier`` (the controller's subject key; a phone number
        without + is read in the controller's registered country) and ``subject``'s
        answer for it. The identifier itself is neither kept nor returned."""
        from ledger.webforms import subject_key

        self._known_controller(controller)
        region = self.registry.controllers[controller].country
        psn = pseudonym(subject_key(self, controller), identifier, region)
        return self.subject(controller, psn)

    def data_key(self, controller: str, subject: str) -> tuple[str, bytes]:
        """The subject's live data key (made on first use): what a producer seals with."""
        self._known_controller(controller)
        return self.keys.data_key(controller, subject)

    def erase_subject(self, controller: str, subject: str, request_id: str | None = None,
                      reason: str | None = None,
                      lock: AbstractContextManager[Any] | None = None) -> dict[str, Any]:
        """Record ``subject.erased`` (signed with the controller's admin key; data:
        ``keys_destroyed_at`` = now, ``key_ids`` = the live kids, ``request_id``,
        ``reason``) and destroy the subject's keys once it is stored. Raises
        :class:`SubjectError` (``unknown_subject``, ``already_erased``,
        ``request_mismatch``) before anything is written.

        ``lock``: the writers' lock of a serving process. The checks scan the log, so they
        run outside it (ingest is not held up); only the append runs inside, after the
        key state is read again (an erasure that landed meanwhile: ``already_erased``)."""
        self._known_controller(controller)
        check_erasable(self.keys.subject_state(controller, subject),
                       records(self.log, controller, subject), subject)
        if request_id is not None:
            check_request(self.log, controller, subject, request_id)
        with lock or nullcontext():
            state = self.keys.subject_state(controller, subject)
            if state.known:  # known already: only already_erased can be new
                check_erasable(state, [], subject)
            now = format_rfc3339(self.clock.now())
            data: dict[str, Any] = {"keys_destroyed_at": now, "key_ids": list(state.live)}
            if request_id is not None:
                data["request_id"] = request_id
            if reason is not None:
                data["reason"] = reason
            result = self._admin_submit(controller, "subject.erased", data, at=now,
                                        subject=subject)
        if result.status == "rejected":
            raise SubjectError(result.code or "rejected", result.detail or "")
        (ev,) = self.log.lookup(controller, [result.event_id or ""]).values()
        apply_erasure(self.keys, ev)  # ingest did it already; here a failure is raised
        after = self.keys.subject_state(controller, subject)
        return {**result.to_dict(), "subject": subject, "keys_destroyed_at": now,
                "key_ids": data["key_ids"], "request_id": request_id,
                "keys": key_state(after)}

    def close(self) -> None:
        if self.router is not None:
            self.router.close()
        self.flush()
        self.verifier.close()
        self.log.close()
        self.keys.close()
