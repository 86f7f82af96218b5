"""``auditledger verify BUNDLE --state FILE`` and ``--witness … --quorum N`` on bundles:
the bundle's checkpoints against the remembered ones, and the cosignatures it carries."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.auditor import Seen, State
from ledger.bundle import build_bundle
from ledger.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from ledger.sequencer import origin
from ledger.signing import load_private_key
from ledger.witness import cosign, cosigner_key, split_note
from tests.conftest import CLI, CONTROLLER, World

ORIGIN = origin(CONTROLLER)


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "verify", *args], capture_output=True, text=True,
                          timeout=120)


def _bundle(world: World, tmp: Path, n: int = 4) -> tuple[Path, int]:
    world.ledger.submit([world.event() for _ in range(n)])
    path = tmp / f"bundle-{n}.zip"
    path.write_bytes(build_bundle(world.ledger, CONTROLLER))
    return path, world.ledger.log.latest_checkpoint(CONTROLLER).size


def test_bundle_checked_against_memory_and_witnesses(world: World, tmp_path: Path) -> None:
    log = world.ledger.log
    world.ledger.submit([world.event() for _ in range(3)])
    world.ledger.flush()
    cp = log.latest_checkpoint(CONTROLLER)
    wkey = Ed25519PrivateKey.generate()
    vkey = cosigner_key("w.example/1", wkey.public_key())
    log.add_cosignatures(CONTROLLER, cp.size,
                         [cosign(split_note(cp.note)[0], "w.example/1", wkey, 1_764_000_000)])
    bundle, size = _bundle(world, tmp_path)
    state = tmp_path / "state.json"

    res = _verify(str(bundle), "--state", str(state), "--json")
    assert res.returncode == 0, res.stderr
    doc = orjson.loads(res.stdout)
    assert doc["ok"] and doc["state"]["size"] == size and doc["state"]["log_key"] == "first use"
    assert "on first use" in res.stderr
    assert [c["size"] for c in orjson.loads(state.read_bytes())["logs"][ORIGIN][
        "checkpoints"]] == [size]

    # The newest checkpoint is not cosigned yet; the cosigned one before it meets the
    # quorum (the chain proves them consistent).
    res = _verify(str(bundle), "--witness", vkey, "--quorum", "1", "--json")
    assert res.returncode == 0, res.stderr
    st = orjson.loads(res.stdout)["state"]
    assert st["cosigned_by"] == ["w.example/1"] and st["cosigned_size"] == cp.size < size
    other = cosigner_key("w.example/2", Ed25519PrivateKey.generate().public_key())
    res = _verify(str(bundle), "--witness", other, "--quorum", "1")
    assert res.returncode == 1 and "0 of 1 required cosignatures" in res.stderr, res.stderr

    # A remembered checkpoint of the bundle's size with another root: a fork, both named.
    key = load_private_key(world.ledger.cfg.log_key_file)
    root = hashlib.sha256(b"other history").digest()
    forged = State(tmp_path / "forked.json")
    forged.remember(ORIGIN, world.ledger.verifier_key, [Seen(
        size, root, sign_checkpoint(Checkpoint(ORIGIN, size, root), "auditledger", key),
        "https://ledger.example")])
    forged.save()
    before = forged.path.read_bytes()
    res = _verify(str(bundle), "--state", str(forged.path), "--json")
    assert res.returncode == 1, res.stderr
    doc = orjson.loads(res.stdout)
    assert not doc["ok"] and doc["problems"][-1]["problem"] == "fork"
    assert res.stderr.startswith("error: fork: ") and "https://ledger.example" in res.stderr
    assert f"size {size} root " in res.stderr and str(bundle) in res.stderr
    assert forged.path.read_bytes() == before

    # A checkpoint remembered from a later visit: the older bundle cannot be linked to it
    # offline, so both stay remembered for the next live visit.
    later, later_size = _bundle(world, tmp_path, 6)
    assert _verify(str(later), "--state", str(state)).returncode == 0
    res = _verify(str(bundle), "--state", str(state), "--json")
    assert res.returncode == 0, res.stderr
    assert orjson.loads(res.stdout)["state"]["unlinked"][0]["size"] == later_size
    kept = orjson.loads(state.read_bytes())["logs"][ORIGIN]["checkpoints"]
    assert [c["size"] for c in kept] == [size, later_size]

    # Memory of another log key: the remembered key, not the bundle's own, is the judge.
    stranger = State(tmp_path / "stranger.json")
    stranger.remember(ORIGIN, verifier_key("auditledger", Ed25519PrivateKey.generate()
                                           .public_key()), [])
    stranger.save()
    res = _verify(str(bundle), "--state", str(stranger.path))
    assert res.returncode == 1 and "does not verify with the log key" in res.stderr


def test_state_and_option_errors_are_one_line(world: World, tmp_path: Path) -> None:
    bundle, _ = _bundle(world, tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in ([str(bundle), "--state", str(bad)],
                 ["--url", "http://127.0.0.1:9", "--controller", CONTROLLER],
                 [str(bundle), "--url", "http://127.0.0.1:9", "--api-key", "k",
                  "--controller", CONTROLLER],
                 ["--url", "http://127.0.0.1:9", "--api-key", "k", "--controller",
                  CONTROLLER, "--state", str(tmp_path / "s.json")],
                 [str(world.data_dir), "--state", str(tmp_path / "s.json")]):
        res = _verify(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: ")
    assert not (tmp_path / "s.json").exists()
