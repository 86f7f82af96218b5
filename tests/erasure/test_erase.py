"""Erasure on the SQLite log: ``Ledger.erase_subject`` and ``auditledger subject erase``,
its error codes, what a restored old key-store backup and a wrong KEK do at start-up."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from ledger.kek import KekError, new_kek_text
from ledger.keystore import Destroyed
from ledger.sealing import view
from ledger.service import Ledger
from ledger.subjects import SubjectError
from ledger.verify import LogSource, verify_source
from tests.conftest import CLI, CONTROLLER, World
from tests.erasure.conftest import accepted, psn, rights, sealed_event


def later(world: World) -> None:
    world.clock.advance(timedelta(seconds=5))


def test_erase_destroys_the_keys_and_everything_still_verifies(world: World) -> None:
    ledger = world.ledger
    alice, bob = psn(ledger, "alice@example.org"), psn(ledger, "bob@example.org")
    accepted(ledger, [sealed_event(world, alice), sealed_event(world, bob),
                      rights(world, alice, "req-1")])
    a_env = next(ledger.log.events(CONTROLLER, types=["consent.given"])).envelope()
    assert view(a_env, ledger.keys, open_=True)["fields"] == {"email": "alice@example.org"}
    (kid,) = ledger.keys.subject_state(CONTROLLER, alice).live
    later(world)

    doc = ledger.erase_subject(CONTROLLER, alice, request_id="req-1", reason="Art. 17 request")
    assert doc["status"] == "accepted" and doc["key_ids"] == [kid]
    assert doc["keys"] == {"live": [], "destroyed": [kid], "erased_at": doc["keys_destroyed_at"]}
    ev = ledger.log.lookup(CONTROLLER, [doc["event_id"]])[doc["event_id"]].envelope()
    assert ev["type"] == "subject.erased" and ev["producer"] == "admin"
    assert ev["subject"] == alice
    assert ev["data"] == {"keys_destroyed_at": doc["keys_destroyed_at"], "key_ids": [kid],
                          "request_id": "req-1", "reason": "Art. 17 request"}
    assert isinstance(ledger.keys.key(CONTROLLER, kid), Destroyed)
    assert view(a_env, ledger.keys, open_=True)["state"] == "erased"
    # bob is untouched
    assert ledger.keys.subject_state(CONTROLLER, bob).live
    ledger.flush()
    report = verify_source(LogSource(ledger.log), [ledger.verifier_key]).to_dict()
    assert report["ok"], report["problems"]
    assert report["controllers"][CONTROLLER]["size"] == 6


def test_unknown_and_double_erasure(world: World) -> None:
    ledger = world.ledger
    nobody = psn(ledger, "nobody@example.org")
    with pytest.raises(SubjectError) as exc:
        ledger.erase_subject(CONTROLLER, nobody)
    assert exc.value.code == "unknown_subject"

    alice = psn(ledger, "alice@example.org")
    accepted(ledger, [sealed_event(world, alice)])
    later(world)
    ledger.erase_subject(CONTROLLER, alice)
    size = ledger.log.size(CONTROLLER)
    with pytest.raises(SubjectError) as exc:
        ledger.erase_subject(CONTROLLER, alice)
    assert exc.value.code == "already_erased"
    assert ledger.log.size(CONTROLLER) == size  # nothing written

    # a person who comes back gets a new key; that one can be erased in turn
    later(world)
    accepted(ledger, [sealed_event(world, alice)])
    (new_kid,) = ledger.keys.subject_state(CONTROLLER, alice).live
    later(world)
    assert ledger.erase_subject(CONTROLLER, alice)["key_ids"] == [new_kid]


def test_a_subject_with_events_but_no_keys_can_be_erased(world: World) -> None:
    """Events without sealed fields: the erasure is recorded (nothing to shred), once."""
    ledger = world.ledger
    assert ledger.submit([world.event(subject="carol@example.org")])[0].status == "accepted"
    from ledger.envelope import pseudonym
    from tests.conftest import SUBJECT_KEY

    carol = pseudonym(SUBJECT_KEY, "carol@example.org")
    later(world)
    assert ledger.erase_subject(CONTROLLER, carol)["key_ids"] == []
    with pytest.raises(SubjectError) as exc:
        ledger.erase_subject(CONTROLLER, carol)
    assert exc.value.code == "already_erased"


@pytest.mark.parametrize("case", ["missing", "other_subject", "access", "refused",
                                  "withdrawn"])
def test_request_mismatch(world: World, case: str) -> None:
    ledger = world.ledger
    alice, bob = psn(ledger, "alice@example.org"), psn(ledger, "bob@example.org")
    events = [sealed_event(world, alice)]
    if case == "other_subject":
        events.append(rights(world, bob, "req-9"))
    elif case == "access":
        events.append(rights(world, alice, "req-9", right="access"))
    elif case in ("refused", "withdrawn"):
        events += [rights(world, alice, "req-9"), rights(world, alice, "req-9", case)]
    accepted(ledger, events)
    size = ledger.log.size(CONTROLLER)
    with pytest.raises(SubjectError) as exc:
        ledger.erase_subject(CONTROLLER, alice, request_id="req-9")
    assert exc.value.code == "request_mismatch"
    expected = {"missing": "no rights request", "other_subject": "another subject",
                "access": "right access", "refused": "was refused",
                "withdrawn": "was withdrawn"}[case]
    assert expected in exc.value.detail
    assert ledger.log.size(CONTROLLER) == size
    assert ledger.keys.subject_state(CONTROLLER, alice).live  # nothing destroyed


def test_a_restored_old_keystore_backup_is_erased_again_on_open(world: World,
                                                                 tmp_path: Path) -> None:
    ledger, cfg = world.ledger, world.ledger.cfg
    alice = psn(ledger, "alice@example.org")
    accepted(ledger, [sealed_event(world, alice)])
    (kid,) = ledger.keys.subject_state(CONTROLLER, alice).live
    backup = tmp_path / "keystore-before.sqlite"
    run_cli("keys", "backup", "--data", str(world.data_dir), "--out", str(backup))
    later(world)
    ledger.erase_subject(CONTROLLER, alice)
    ledger.close()

    for suffix in ("", "-wal", "-shm"):
        Path(f"{cfg.keystore_db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, cfg.keystore_db)
    from ledger.keystore import open_keystore

    restored = open_keystore(cfg)
    assert restored.subject_state(CONTROLLER, alice).live == [kid]  # the backup had it
    restored.close()

    reopened = Ledger(cfg, clock=world.clock, verifier_workers=0)
    try:
        found = reopened.keys.key(CONTROLLER, kid)
        assert isinstance(found, Destroyed)
        assert reopened.keys.subject_state(CONTROLLER, alice).live == []
    finally:
        reopened.close()
    world.ledger = Ledger(cfg, clock=world.clock, verifier_workers=0)  # for the fixture


def test_a_wrong_kek_at_start_is_kek_mismatch(world: World) -> None:
    data = world.data_dir
    world.ledger.close()
    env = {**os.environ, "AUDITLEDGER_KEK": new_kek_text()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDITLEDGER_KEK", env["AUDITLEDGER_KEK"])
        with pytest.raises(KekError) as exc:
            Ledger.open(data)
        assert exc.value.code == "kek_mismatch"
    for args in (["subject", "lookup", "--data", str(data), "--controller", CONTROLLER,
                  "--identifier", "alice@example.org"],
                 ["serve", "--data", str(data), "--port", "0"]):
        proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env,
                              timeout=120)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: kek_mismatch: "), proc.stderr
    world.ledger = Ledger.open(data, clock=world.clock, verifier_workers=0)


def run_cli(*args: str, env: dict[str, str] | None = None, code: int = 0
            ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc


def test_cli_lookup_erase_rotate(world: World, tmp_path: Path) -> None:
    ledger, data = world.ledger, str(world.data_dir)
    alice = psn(ledger, "Alice@Example.org ")
    accepted(ledger, [sealed_event(world, alice), rights(world, alice, "req-1")])
    ledger.close()

    found = orjson.loads(run_cli("subject", "lookup", "--data", data, "--controller",
                                 CONTROLLER, "--identifier", "alice@example.org",
                                 "--json").stdout)
    assert found["subject"] == alice and found["known"]
    assert [r["type"] for r in found["records"]] == ["consent.given",
                                                     "rights_request.received"]
    assert len(found["keys"]["live"]) == 1
    text = run_cli("subject", "lookup", "--data", data, "--controller", CONTROLLER,
                   "--identifier", "alice@example.org").stdout
    assert text.startswith(f"{alice}: 2 record(s); keys: 1 live, 0 destroyed")

    bad = run_cli("subject", "erase", "--data", data, "--controller", CONTROLLER,
                  "--subject", alice, "--request", "req-404", code=2)
    assert bad.stderr.startswith("error: request_mismatch: ")
    erased = orjson.loads(run_cli("subject", "erase", "--data", data, "--controller",
                                  CONTROLLER, "--subject", alice, "--request", "req-1",
                                  "--reason", "asked by e-mail", "--json").stdout)
    assert erased["status"] == "accepted" and erased["key_ids"] == found["keys"]["live"]
    again = run_cli("subject", "erase", "--data", data, "--controller", CONTROLLER,
                    "--subject", alice, code=2)
    assert again.stderr.startswith("error: already_erased: ")
    unknown = run_cli("subject", "erase", "--data", data, "--controller", CONTROLLER,
                      "--subject", "psn:" + "Q" * 43, code=2)
    assert unknown.stderr.startswith("error: unknown_subject: ")

    new_kek = tmp_path / "new.kek"
    new_kek.write_text(new_kek_text())
    rotated = orjson.loads(run_cli("keys", "rotate-kek", "--data", data, "--new-kek-file",
                                   str(new_kek), "--json").stdout)
    assert rotated["kek_source"] == "file" and rotated["rewrapped"] >= 1
    assert (world.data_dir / "keys" / "kek").read_text().strip() == new_kek.read_text()
    # the ledger opens with the new KEK, the log verifies, the subject is still erased
    report = orjson.loads(run_cli("verify", data, "--json").stdout)
    assert report["ok"] and report["controllers"][CONTROLLER]["size"] == 5
    world.ledger = Ledger.open(world.data_dir, clock=world.clock, verifier_workers=0)
    assert world.ledger.keys.subject_state(CONTROLLER, alice).live == []


def test_init_makes_the_kek_file_for_the_owner_only(world: World) -> None:
    kek = world.data_dir / "keys" / "kek"
    assert kek.exists() and (kek.stat().st_mode & 0o777) == 0o600
    assert world.ledger.keys.subject_state(CONTROLLER, "psn:" + "A" * 43).known is False


def test_an_erasure_that_lands_during_the_checks_makes_the_second_already_erased(
        world: World) -> None:
    """The checks run outside the writers' lock; inside it the key state is read again."""
    ledger = world.ledger
    alice = psn(ledger, "alice@example.org")
    accepted(ledger, [sealed_event(world, alice)])
    later(world)

    class OtherWriterFirst:
        def __enter__(self) -> None:
            ledger.erase_subject(CONTROLLER, alice)  # another request won the race

        def __exit__(self, *exc: object) -> None:
            return None

    size = ledger.log.size(CONTROLLER)
    with pytest.raises(SubjectError) as exc:
        ledger.erase_subject(CONTROLLER, alice, lock=OtherWriterFirst())
    assert exc.value.code == "already_erased"
    assert ledger.log.size(CONTROLLER) == size + 1  # one subject.erased, not two
