"""The key store, the KEK and sealed fields (ledger/keystore.py, kek.py, sealing.py), on
SQLite and on a real PostgreSQL."""

from __future__ import annotations

import base64
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ledger.clock import FixedClock, format_rfc3339
from ledger.config import Config
from ledger.envelope import IdentifierError, normalise_identifier, pseudonym
from ledger.kek import KekError, kek_id, load_kek, new_kek_text, parse_kek
from ledger.keystore import (
    Destroyed,
    Key,
    KeyStore,
    KeyStoreError,
    open_keystore,
    rotate_kek,
)
from ledger.sealing import SealError, open_sealed, seal, seal_envelope, view
from tests.conftest import NOW

C, D = "NO-921119224", "DK-26459400"
ANN = "psn:" + "A" * 43
BOB = "psn:" + "B" * 43

MakeStore = Callable[..., KeyStore]


def _cfg(tmp: Path, **kw: object) -> Config:
    d = tmp / "ledger"
    (d / "keys").mkdir(parents=True, exist_ok=True)
    cfg = Config(data_dir=d, **kw)  # type: ignore[arg-type]
    kek = cfg.keys_dir / "kek"
    if not kek.exists():
        kek.write_text(new_kek_text() + "\n")
    return cfg


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeStore]:
    """Opens the key store of one data dir (again and again, as restarts do)."""
    cfg = _cfg(tmp_path)
    if request.param == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        schema = f"ks_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        cfg = replace(cfg, keystore_dsn=make_conninfo(dsn, options=f"-c search_path={schema}"))
    opened: list[KeyStore] = []

    def make(kek: bytes | None = None, clock: FixedClock | None = None) -> KeyStore:
        store = open_keystore(cfg, kek, clock or FixedClock(NOW))
        opened.append(store)
        return store

    make.cfg = cfg  # type: ignore[attr-defined]
    yield make
    for s in opened:
        s.close()  # closing twice is harmless


# -- pseudonyms ------------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "region", "normal"), [
    ("  Kari.Nordmann@Example.NO ", None, "kari.nordmann@example.no"),
    ("\uff2b\uff41\uff52\uff49@example.no", None, "kari@example.no"),  # full-width letters
    ("+47 912 34 567", None, "+4791234567"),
    ("912 34 567", "NO", "+4791234567"),
    ("0047 912-34-567", "NO", "+4791234567"),
    ("(0)20 7946 0958", "GB", "+442079460958"),
    ("912 34 567", None, "912 34 567"),  # a national number without a country stays as is
    ("123456", "NO", "123456"),  # not a valid number: a customer number, not rewritten
    ("Cust-42", None, "Cust-42"),
])
def test_identifiers_are_normalised(given: str, region: str | None, normal: str) -> None:
    assert normalise_identifier(given, region) == normal


def test_one_person_one_pseudonym_however_spelled() -> None:
    key = b"k" * 32
    assert pseudonym(key, "Kari@Example.no") == pseudonym(key, " kari@example.no")
    assert pseudonym(key, "+47 91234567") == pseudonym(key, "91 23 45 67", region="NO")
    assert pseudonym(key, "kari@example.no") != pseudonym(b"j" * 32, "kari@example.no")
    with pytest.raises(IdentifierError):
        pseudonym(key, "   ")


# -- the KEK ---------------------------------------------------------------------------------

def test_kek_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path)
    from_file = load_kek(cfg)
    other = new_kek_text()
    monkeypatch.setenv("AUDITLEDGER_KEK", other)
    assert load_kek(cfg) == parse_kek(other, "x") != from_file
    monkeypatch.delenv("AUDITLEDGER_KEK")
    cmd = replace(cfg, kek_command=f"{sys.executable} -c \"print('{other}')\"")
    assert load_kek(cmd) == parse_kek(other, "x")
    std = base64.b64encode(parse_kek(other, "x")).decode()  # a KMS prints standard base64
    assert parse_kek(std + "\n", "x") == parse_kek(other, "x")


def test_bad_keks_are_named(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    (cfg.keys_dir / "kek").unlink()
    with pytest.raises(KekError) as e:
        load_kek(cfg)
    assert e.value.code == "kek_missing" and "AUDITLEDGER_KEK" in e.value.detail
    (cfg.keys_dir / "kek").write_text("c2hvcnQ\n")
    with pytest.raises(KekError) as e:
        load_kek(cfg)
    assert e.value.code == "kek_invalid" and "32 bytes, got 5" in e.value.detail
    failing = replace(cfg, kek_command=f"{sys.executable} -c \"import sys; "
                      "sys.exit('kms: access denied')\"")
    with pytest.raises(KekError) as e:
        load_kek(failing)
    assert e.value.code == "kek_missing" and "access denied" in e.value.detail


def test_a_wrong_kek_is_refused_by_name(make_store: MakeStore) -> None:
    store = make_store()
    store.data_key(C, ANN)
    store.close()
    wrong = parse_kek(new_kek_text(), "x")
    with pytest.raises(KekError) as e:
        make_store(kek=wrong)
    assert e.value.code == "kek_mismatch"
    assert kek_id(wrong) in e.value.detail and kek_id(load_kek(make_store.cfg)) in e.value.detail  # type: ignore[attr-defined]


# -- keys --------------------------------------------------------------------------------

def test_data_keys_per_subject_and_controller(make_store: MakeStore) -> None:
    store = make_store()
    kid, key = store.data_key(C, ANN)
    assert kid.startswith("dk_") and len(key) == 32
    assert store.data_key(C, ANN) == (kid, key)  # one live key per subject
    assert store.data_key(C, BOB)[0] != kid
    assert store.data_key(D, ANN)[0] != kid  # another tenant, another key
    assert store.key(C, kid) == Key(kid, ANN, key)
    assert store.key(D, kid) is None  # a kid is only found under its own controller
    store.close()
    again = make_store()
    assert again.data_key(C, ANN) == (kid, key)  # kept across restarts


def test_subject_key_is_stable_and_takes_over_a_clear_file(make_store: MakeStore,
                                                           tmp_path: Path) -> None:
    legacy = tmp_path / "C.subject.key"
    legacy.write_bytes(b"L" * 32)
    store = make_store()
    assert store.subject_key(C, legacy_file=legacy) == b"L" * 32
    assert not legacy.exists()  # no clear copy left beside the ledger
    assert store.subject_key(C) == b"L" * 32
    assert store.subject_key(D) != b"L" * 32 and len(store.subject_key(D)) == 32


def test_destroy_shreds_up_to_a_time_and_keeps_a_tombstone(make_store: MakeStore) -> None:
    clock = FixedClock(NOW)
    store = make_store(clock=clock)
    kid, _ = store.data_key(C, ANN)
    other, _ = store.data_key(C, BOB)
    until = format_rfc3339(clock.now())
    clock.advance(timedelta(seconds=60))
    assert store.destroy(C, ANN, until, "ev-erase-1") == [kid]
    found = store.key(C, kid)
    assert isinstance(found, Destroyed) and found.erased_by == "ev-erase-1"
    assert isinstance(store.key(C, other), Key)  # only that subject
    assert store.destroy(C, ANN, until, "ev-erase-1") == []  # idempotent
    state = store.subject_state(C, ANN)
    assert state.live == [] and state.destroyed == [kid] and state.erased_at == until
    new, _ = store.data_key(C, ANN)  # the person comes back: a new key, the old stays gone
    assert new != kid and store.subject_state(C, ANN).live == [new]
    assert store.destroy(C, ANN, until, "ev-erase-1") == []  # made after that erasure
    assert not store.subject_state(C, "psn:" + "Z" * 43).known


def test_a_destroyed_key_leaves_no_bytes_in_the_sqlite_files(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    store = open_keystore(cfg, clock=FixedClock(NOW))
    kid, _ = store.data_key(C, ANN)
    conn = sqlite3.connect(cfg.keystore_db)
    (wrapped,) = conn.execute("SELECT wrapped FROM data_keys WHERE kid = ?", (kid,)).fetchone()
    conn.close()
    store.destroy(C, ANN, format_rfc3339(NOW), "ev-1")
    store.close()
    for f in cfg.data_dir.glob("keystore.sqlite*"):
        assert bytes(wrapped) not in f.read_bytes(), f


def test_tampered_wrapped_key_is_named(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store()
    kid, _ = store.data_key(C, ANN)
    store.close()
    cfg = make_store.cfg  # type: ignore[attr-defined]
    if cfg.keystore_dsn:
        with psycopg.connect(cfg.keystore_dsn, autocommit=True) as conn:
            conn.execute("UPDATE data_keys SET subject = %s WHERE kid = %s", (BOB, kid))
    else:
        conn = sqlite3.connect(cfg.keystore_db)
        conn.execute("UPDATE data_keys SET subject = ? WHERE kid = ?", (BOB, kid))
        conn.commit()
        conn.close()
    with pytest.raises(KeyStoreError) as e:
        make_store().key(C, kid)  # moved to another subject: the AAD no longer matches
    assert e.value.code == "key_unwrap_failed"


def test_kek_rotation_rewraps_everything(make_store: MakeStore) -> None:
    cfg = make_store.cfg  # type: ignore[attr-defined]
    store = make_store()
    kid, key = store.data_key(C, ANN)
    skey = store.subject_key(C)
    old = load_kek(cfg)
    new_text = new_kek_text()
    assert rotate_kek(cfg, new_text, store) == 2  # the data key and the subject key
    store.close()
    assert load_kek(cfg) == parse_kek(new_text, "x") != old  # the file source was replaced
    again = make_store()
    assert again.key(C, kid) == Key(kid, ANN, key) and again.subject_key(C) == skey
    again.close()
    with pytest.raises(KekError) as e:
        make_store(kek=old)
    assert e.value.code == "kek_mismatch"


def test_backup_is_a_working_key_store(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    store = open_keystore(cfg, clock=FixedClock(NOW))
    kid, key = store.data_key(C, ANN)
    store.backup(tmp_path / "bk" / "keystore.sqlite")
    store.close()
    restored = replace(cfg, data_dir=tmp_path / "bk")
    (restored.keys_dir).mkdir(parents=True)
    (restored.keys_dir / "kek").write_text((cfg.keys_dir / "kek").read_text())
    assert (tmp_path / "bk" / "keystore.sqlite").stat().st_mode & 0o077 == 0
    assert open_keystore(restored).key(C, kid) == Key(kid, ANN, key)


# -- sealed fields ---------------------------------------------------------------------------

def test_seal_and_open(make_store: MakeStore) -> None:
    store = make_store()
    env = {"controller": C, "event_id": "ev-1", "subject": ANN}
    seal_envelope(env, {"email": "kari@example.no", "name": "Kari Nordmann"}, store)
    sealed = env["sealed"]
    assert set(sealed) == {"kid", "nonce", "ct"} and "kari" not in str(sealed)
    kid, key = store.data_key(C, ANN)
    assert sealed["kid"] == kid
    assert open_sealed(sealed, key, C, "ev-1") == {"email": "kari@example.no",
                                                  "name": "Kari Nordmann"}
    for controller, event_id in ((C, "ev-2"), (D, "ev-1")):  # copied elsewhere: no
        with pytest.raises(SealError, match="does not decrypt"):
            open_sealed(sealed, key, controller, event_id)
    bad = dict(sealed, ct=sealed["ct"][:-2] + ("AA" if sealed["ct"][-2:] != "AA" else "BA"))
    with pytest.raises(SealError):
        open_sealed(bad, key, C, "ev-1")
    assert view(env, store) == {"state": "sealed", "kid": kid}
    assert view(env, store, open_=True)["fields"]["name"] == "Kari Nordmann"
    assert view({"controller": C, "event_id": "x"}, store) == {"state": "absent"}
    store.destroy(C, ANN, format_rfc3339(NOW), "ev-erase")
    v = view(env, store, open_=True)
    assert v["state"] == "erased" and "fields" not in v and v["erased_at"]
    assert view(dict(env, sealed=dict(sealed, kid="dk_nope")), store)["state"] == "unreadable"


def test_sealing_rules() -> None:
    with pytest.raises(SealError, match="subject"):
        seal_envelope({"controller": C, "event_id": "e"}, {"a": "b"}, None)  # type: ignore[arg-type]
    with pytest.raises(SealError, match="before signing"):
        seal_envelope({"controller": C, "event_id": "e", "subject": ANN, "sig": "x"},
                      {"a": "b"}, None)  # type: ignore[arg-type]
    with pytest.raises(SealError):
        seal({}, "dk_x", b"k" * 32, C, "e")
    fixed = seal({"a": "b"}, "dk_x", b"k" * 32, C, "e", nonce=b"\0" * 12)
    assert fixed == seal({"a": "b"}, "dk_x", b"k" * 32, C, "e", nonce=b"\0" * 12)


# -- erasures as the log records them ------------------------------------------------------

def test_a_restored_backup_does_not_bring_erased_keys_back(tmp_path: Path) -> None:
    from ledger.keystore import reapply_erasures
    from ledger.service import Ledger
    from tests.conftest import CONTROLLER, make_world

    world = make_world(tmp_path)
    ledger, cfg = world.ledger, world.ledger.cfg
    subject = world.event(subject="kari@example.no")["subject"]
    kid, _ = ledger.keys.data_key(CONTROLLER, subject)
    ledger.keys.backup(tmp_path / "before-erasure.sqlite")
    erased = world.event("subject.erased", {"keys_destroyed_at": format_rfc3339(NOW)},
                         subject="kari@example.no")
    (res,) = ledger.submit([erased])
    assert res.status == "accepted", res
    assert reapply_erasures(ledger.log, ledger.keys) in (0, 1)  # ingest may have done it
    assert isinstance(ledger.keys.key(CONTROLLER, kid), Destroyed)
    ledger.close()
    (tmp_path / "before-erasure.sqlite").replace(cfg.keystore_db)  # an old backup restored
    for wal in cfg.data_dir.glob("keystore.sqlite-*"):
        wal.unlink()
    reopened = Ledger(cfg, clock=FixedClock(NOW))
    try:
        found = reopened.keys.key(CONTROLLER, kid)
        assert isinstance(found, Destroyed) and found.erased_by == erased["event_id"]
        assert reapply_erasures(reopened.log, reopened.keys) == 0  # already up to date
    finally:
        reopened.close()
