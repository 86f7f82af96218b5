"""The producer test vectors (schemas/testvectors, docs/producers.md) are what the code
makes, the project's functions reproduce and accept every one, and code that shares
nothing with the ledger agrees: Node's crypto (check.mjs: Ed25519, leaf hashes,
pseudonyms, AES-GCM) and the Go verifier (tests/goverify: x/mod note for the checkpoint
signatures, transparency-dev/merkle for the proofs)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.canonical import canonical_bytes, reference_canonical_bytes
from ledger.checkpoint import open_checkpoint, parse_verifier_key
from ledger.encoding import unb64, unb64url
from ledger.envelope import normalise_identifier, pseudonym
from ledger.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from ledger.sealing import open_sealed, seal
from ledger.signing import DOMAIN, signing_input, verify_signature
from tests.conftest import CONTROLLER, REPO
from tests.goverify.conftest import build, run

VECTORS = REPO / "schemas" / "testvectors"
HERE = Path(__file__).resolve().parent


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("testvectors", REPO / "scripts" /
                                                  "testvectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> dict[str, Any]:
    return orjson.loads((VECTORS / name).read_bytes())


def test_the_files_are_what_the_code_makes() -> None:
    files = _generator().build()
    assert sorted(files) == sorted(p.name for p in VECTORS.glob("*.json"))
    for name, body in files.items():
        assert (VECTORS / name).read_bytes() == body, \
            f"{name} is stale: run python scripts/testvectors.py"
    for name in files:
        doc = load(name)
        assert doc["what"] and "scripts/testvectors.py" in doc["source"], name


def test_canonical_bytes() -> None:
    cases = load("canonical.json")["cases"]
    assert len(cases) >= 10
    for c in cases:
        value = orjson.loads(c["input"])
        assert canonical_bytes(value).decode() == c["canonical"], c["name"]
        # the reference implementation (rfc8785) agrees with the fast path
        assert reference_canonical_bytes(value).hex() == c["canonical_hex"], c["name"]
    by_name = {c["name"]: c for c in cases}
    assert by_name["key order by UTF-16"]["canonical"] == \
        '{"Z":5,"a":3,"é":4,"😀":2,"Ａ":1}'
    assert by_name["escapes"]["canonical"].count("\\/") == 0


def test_signatures() -> None:
    doc = load("signing.json")
    pub = unb64url(doc["public_key"], 32)
    assert bytes.fromhex(doc["domain_hex"]) == DOMAIN == b"auditledger/1\n"
    for c in doc["cases"]:
        message = signing_input(c["envelope"])
        assert message.hex() == c["signing_input_hex"]
        assert message == DOMAIN + c["canonical"].encode()
        assert verify_signature(pub, message, c["sig"])
        assert not verify_signature(pub, message + b" ", c["sig"])


def test_leaf_hashes_and_tree() -> None:
    leaves = load("leaves.json")["cases"]
    tree = load("tree.json")
    signing = {c["envelope"]["event_id"]: c for c in load("signing.json")["cases"]}
    hashes = []
    for c in leaves:
        env = orjson.loads(c["entry"])
        assert canonical_bytes(env).decode() == c["entry"]
        unsigned = {k: v for k, v in env.items() if k != "sig"}
        assert unsigned == signing[env["event_id"]]["envelope"]
        h = leaf_hash(c["entry"].encode())
        assert h.hex() == c["leaf_hash_hex"]
        hashes.append(h)
    assert [unb64(x) for x in tree["leaf_hashes"]] == hashes
    for n, root in tree["roots"].items():
        assert root_of(hashes[: int(n)]) == unb64(root)
    vkey = tree["log_verifier_key"]
    assert parse_verifier_key(vkey)[0] == "auditledger"
    for n, note in tree["checkpoints"].items():
        cp = open_checkpoint(note, [vkey])
        assert cp.size == int(n) and cp.origin == f"auditledger/{CONTROLLER}"
    size = len(hashes)
    root = unb64(tree["roots"][str(size)])
    for p in tree["inclusion"]:
        verify_inclusion(unb64(p["leaf_hash"]), p["index"], size,
                         [unb64(x) for x in p["proof"]], root)
    for p in tree["consistency"]:
        verify_consistency(p["from"], size, unb64(tree["roots"][str(p["from"])]), root,
                           [unb64(x) for x in p["proof"]])


def test_pseudonyms() -> None:
    doc = load("pseudonyms.json")
    key = bytes.fromhex(doc["subject_key_hex"])
    psns = {}
    for c in doc["cases"]:
        assert normalise_identifier(c["identifier"], c["region"]) == c["normalised"]
        assert pseudonym(key, c["identifier"], c["region"]) == c["pseudonym"]
        psns[c["identifier"]] = c["pseudonym"]
    assert psns["alice@example.org"] == psns["  Alice@Example.ORG "] == \
        psns["ａｌｉｃｅ@example.org"]
    assert psns["+47 912 34 567"] == psns["912 34 567"]
    assert psns["CUST-00017"] != psns["cust-00017"]


def test_sealed_fields() -> None:
    for c in load("sealed.json")["cases"]:
        key = unb64url(c["key"], 32)
        assert open_sealed(c["sealed"], key, c["controller"], c["event_id"]) == c["fields"]
        again = seal(c["fields"], c["kid"], key, c["controller"], c["event_id"],
                     nonce=unb64url(c["nonce"], 12))
        assert again == c["sealed"]
        assert canonical_bytes(c["fields"]).decode() == c["plaintext"]


def test_node_agrees() -> None:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/bootstrap.sh installs it)"
    res = subprocess.run([node, str(HERE / "check.mjs"), str(VECTORS)],
                         capture_output=True, text=True, timeout=60)
    doc = orjson.loads(res.stdout)
    assert res.returncode == 0 and doc["ok"], (doc, res.stderr)
    assert doc["checked"] >= 40


@pytest.fixture(scope="module")
def goverify() -> Path:
    return build()


def test_go_verifier_agrees(goverify: Path, tmp_path: Path) -> None:
    tree = load("tree.json")
    vkey, size = tree["log_verifier_key"], len(tree["leaf_hashes"])
    args = ("--log-key", vkey, "--controller", CONTROLLER)
    notes = {}
    for n, note in tree["checkpoints"].items():
        notes[n] = tmp_path / f"checkpoint-{n}"
        notes[n].write_text(note)
        r = run(goverify, "checkpoint", *args, notes[n])
        assert r.code == 0, (n, r.report, r.stderr)
    for p in tree["inclusion"]:
        f = tmp_path / f"inclusion-{p['index']}.json"
        f.write_bytes(orjson.dumps({**p, "event_id": f"leaf-{p['index']}"}))
        r = run(goverify, "inclusion", *args, f)
        assert r.code == 0, (p["index"], r.report, r.stderr)
    for p in tree["consistency"]:
        f = tmp_path / f"consistency-{p['from']}.json"
        f.write_bytes(orjson.dumps({"from": p["from"], "to": p["to"], "proof": p["proof"]}))
        r = run(goverify, "consistency", *args, "--old", notes[str(p["from"])],
                "--new", notes[str(size)], f)
        assert r.code == 0, (p["from"], r.report, r.stderr)
    # and a mutated proof fails there too: the check can fail
    bad = dict(tree["inclusion"][3])
    bad["proof"] = list(reversed(bad["proof"]))
    f = tmp_path / "inclusion-bad.json"
    f.write_bytes(orjson.dumps({**bad, "event_id": "leaf-3"}))
    assert run(goverify, "inclusion", *args, f).code == 1
