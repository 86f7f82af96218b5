"""The ledger checked by code that shares nothing with it: the Go verifier in this folder
(golang.org/x/mod/sumdb/note and tlog, github.com/transparency-dev/merkle) reads a real
``auditledger serve`` on loopback — its C2SP tiles and its JSON proofs — and must accept
them as they are and reject every mutation below, by the name ``auditledger verify`` uses.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ledger.checkpoint import sign_note
from ledger.signing import generate_key
from tests.conftest import CONTROLLER, OTHER
from tests.goverify.conftest import Live, run


def api(live: Live, path: str, key: str | None = None) -> httpx.Response:
    r = httpx.get(f"{live.serve.url}/v1/controllers/{CONTROLLER}{path}", timeout=30,
                  headers={"Authorization": f"Bearer {key or live.auditor}"})
    return r


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r.json()


def tlog_size(live: Live) -> int:
    return int(api(live, "/tlog/checkpoint").text.split("\n")[1])


def wait_for_size(live: Live, size: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while tlog_size(live) < size:
        assert time.monotonic() < deadline, f"no checkpoint of size {size} in {timeout} s"
        time.sleep(0.1)


def write(tmp: Path, name: str, data: str | bytes | dict[str, Any]) -> Path:
    path = tmp / name
    if isinstance(data, dict):
        data = orjson.dumps(data)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def resigned(note: str) -> str:
    """The same checkpoint text signed by another key under the log key's name."""
    text = note[: note.index("\n\n") + 1]
    return sign_note(text, "auditledger", generate_key())


def flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def with_root_flipped(note: str) -> str:
    """The checkpoint with its root changed and the log's signature kept."""
    lines = note.split("\n")
    lines[2] = flip(lines[2])
    return "\n".join(lines)


# -- tiles, read by x/mod's tlog client ------------------------------------------------------


def test_standard_client_reads_the_log_as_tiles(goverify: Path, live: Live, tmp_path: Path
                                                ) -> None:
    old_note = api(live, "/tlog/checkpoint").text
    old_size = int(old_note.split("\n")[1])
    assert old_size >= 600
    results = live.producer.post(live.producer.batch(50))
    assert all(r["status"] == "accepted" for r in results)
    wait_for_size(live, old_size + 50)
    res = run(goverify, "tlog", "--log-key", live.log_key, "--controller", CONTROLLER,
              "--url", live.serve.url, "--api-key", live.auditor,
              "--old", write(tmp_path, "old.note", old_note),
              "--index", "0", "--index", "255", "--index", "256", "--index", str(old_size))
    assert res.code == 0, (res.report, res.stderr)
    got = res.report["controllers"][CONTROLLER]
    assert got["size"] >= old_size + 50
    assert got["entries"] == got["size"]  # every entry fetched and hashed to its leaf
    assert got["consistent_from"] == old_size
    # The root the tiles gave is the one the JSON checkpoint route states.
    assert got["root"] == ok(api(live, "/checkpoint"))["root"] or got["size"] < tlog_size(live)


def test_tiles_of_another_tenant_are_not_found(goverify: Path, live: Live) -> None:
    res = run(goverify, "tlog", "--log-key", live.log_key, "--controller", CONTROLLER,
              "--url", live.serve.url, "--api-key", live.other_auditor)
    assert res.code == 2 and "HTTP 404" in res.stderr, (res.code, res.stderr)
    res = run(goverify, "tlog", "--log-key", live.log_key, "--controller", CONTROLLER,
              "--url", live.serve.url, "--api-key", "not-a-key")
    assert res.code == 2 and "HTTP 401" in res.stderr, (res.code, res.stderr)


def test_the_wrong_log_key_is_refused(goverify: Path, live: Live) -> None:
    from ledger.checkpoint import verifier_key

    other = verifier_key("auditledger", generate_key().public_key())
    res = run(goverify, "tlog", "--log-key", other, "--controller", CONTROLLER,
              "--url", live.serve.url, "--api-key", live.auditor)
    assert res.code == 1 and res.problems == ["bad_checkpoint"], res.report


class Tamper:
    """A loopback proxy in front of the server that alters one kind of resource."""

    def __init__(self, upstream: str, alter: Callable[[str, bytes], bytes]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                r = httpx.get(upstream + self.path, timeout=30, headers={
                    "Authorization": self.headers.get("Authorization", "")})
                body = alter(self.path, r.content) if r.status_code == 200 else r.content
                self.send_response(r.status_code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        outer.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Tamper:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _flip_at(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(("name", "alter", "problem"), [
    # One bit of a leaf hash in the first level-0 tile: the tiles no longer give the root.
    ("level-0 tile", lambda p, b: _flip_at(b, 40) if p.endswith("/tile/0/000") else b,
     "root_mismatch"),
    # A level-1 hash (the first full level-0 tile's): refused before any leaf is used.
    ("level-1 tile", lambda p, b: _flip_at(b, 0) if "/tile/1/000" in p else b,
     "root_mismatch"),
    # One byte of an entry's body: the tiles check out, the entry does not hash to its leaf.
    ("entry", lambda p, b: _flip_at(b, 20) if p.endswith("/tile/entries/001") else b,
     "leaf_hash_mismatch"),
    # An entry dropped from a bundle.
    ("entry dropped", lambda p, b: b[2 + int.from_bytes(b[:2], "big"):]
     if p.endswith("/tile/entries/000") else b, "missing_event"),
    # The checkpoint's root changed, the log's signature kept.
    ("checkpoint", lambda p, b: with_root_flipped(b.decode()).encode()
     if p.endswith("/tlog/checkpoint") else b, "bad_checkpoint"),
])
def test_altered_tiles_are_named(goverify: Path, live: Live, name: str,
                                 alter: Callable[[str, bytes], bytes], problem: str) -> None:
    with Tamper(live.serve.url, alter) as proxy:
        res = run(goverify, "tlog", "--log-key", live.log_key, "--controller", CONTROLLER,
                  "--url", proxy.url, "--api-key", live.auditor)
    assert res.code == 1, (name, res.code, res.stderr)
    assert problem in res.problems, (name, res.report)


# -- the JSON proofs, checked with transparency-dev/merkle -----------------------------------


@pytest.fixture
def proofs(live: Live, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An inclusion proof for the first and the latest event, and a consistency proof
    from an older checkpoint to the newest, as the API serves them."""
    old = ok(api(live, "/checkpoint"))
    live.producer.post(live.producer.batch(3))
    wait_for_size(live, old["size"] + 3)
    new = ok(api(live, "/checkpoint"))
    ids = [e["event_id"] for e in ok(api(live, "/events?limit=1"))["items"]]
    ids.append(sorted(live.producer.acked)[0])
    yield {
        "old": old, "new": new,
        "inclusion": [ok(api(live, f"/proofs/inclusion/{i}")) for i in ids],
        "consistency": ok(api(live, f"/proofs/consistency?from={old['size']}"
                                    f"&to={new['size']}")),
        "other": ok(httpx.get(f"{live.serve.url}/v1/controllers/{OTHER}/checkpoint",
                              headers={"Authorization": f"Bearer {live.other_auditor}"})),
        "tmp": tmp_path,
    }


def test_api_proofs_verify(goverify: Path, live: Live, proofs: dict[str, Any]) -> None:
    tmp = proofs["tmp"]
    key = ["--log-key", live.log_key, "--controller", CONTROLLER]
    res = run(goverify, "checkpoint", *key, write(tmp, "new.note", proofs["new"]["note"]))
    assert res.code == 0, res.report
    assert res.report["controllers"][CONTROLLER]["root"] == proofs["new"]["root"]
    for i, doc in enumerate(proofs["inclusion"]):
        res = run(goverify, "inclusion", *key, write(tmp, f"incl{i}.json", doc))
        assert res.code == 0, (doc, res.report)
        assert res.report["controllers"][CONTROLLER]["included"] == doc["event_id"]
    res = run(goverify, "consistency", *key, "--old", write(tmp, "old.note", proofs["old"]["note"]),
              "--new", tmp / "new.note", write(tmp, "cons.json", proofs["consistency"]))
    assert res.code == 0, res.report
    assert res.report["controllers"][CONTROLLER]["consistent_from"] == proofs["old"]["size"]


def _mut(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**doc, **changes}


INCLUSION_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = [
    ("flipped proof hash", lambda d: _mut(d, proof=[flip(d["proof"][0]), *d["proof"][1:]]),
     "inclusion_failed"),
    ("proof hash dropped", lambda d: _mut(d, proof=d["proof"][:-1]), "inclusion_failed"),
    ("extra proof hash", lambda d: _mut(d, proof=[*d["proof"], d["proof"][0]]),
     "inclusion_failed"),
    ("wrong tree size", lambda d: _mut(d, tree_size=d["tree_size"] - 1), "inclusion_failed"),
    ("wrong index", lambda d: _mut(d, index=d["index"] + 1), "inclusion_failed"),
    ("other leaf", lambda d: _mut(d, leaf_hash=flip(d["leaf_hash"])), "inclusion_failed"),
    ("checkpoint re-signed with another key",
     lambda d: _mut(d, checkpoint=resigned(d["checkpoint"])), "bad_checkpoint"),
    ("checkpoint root altered",
     lambda d: _mut(d, checkpoint=with_root_flipped(d["checkpoint"])), "bad_checkpoint"),
    ("checkpoint text altered",
     lambda d: _mut(d, checkpoint=d["checkpoint"].replace(CONTROLLER, "XX-1", 1)),
     "bad_checkpoint"),
    # Signed by the same log key, but for the other tenant's log (origin line).
    ("checkpoint of another log", lambda d: _mut(d, checkpoint=d["other_note"]),
     "bad_checkpoint"),
]


@pytest.mark.parametrize(("name", "mutate", "problem"), INCLUSION_MUTATIONS,
                         ids=[m[0] for m in INCLUSION_MUTATIONS])
def test_mutated_inclusion_proofs_are_rejected(
    goverify: Path, live: Live, proofs: dict[str, Any], name: str,
    mutate: Callable[[dict[str, Any]], dict[str, Any]], problem: str,
) -> None:
    doc = proofs["inclusion"][0]  # index 0: its proof has a hash at every level
    assert doc["proof"], doc
    bad = mutate({**doc, "other_note": proofs["other"]["note"]})
    bad.pop("other_note")
    path = write(proofs["tmp"], "bad.json", bad)
    res = run(goverify, "inclusion", "--log-key", live.log_key, "--controller", CONTROLLER, path)
    assert res.code == 1, (name, res.report, res.stderr)
    assert res.problems == [problem], (name, res.report)


CONSISTENCY_MUTATIONS: list[tuple[str, str, str]] = [
    ("flipped proof hash", "proof", "checkpoint_fork"),
    ("proof hash dropped", "short", "checkpoint_fork"),
    ("wrong tree size", "to", "checkpoint_fork"),
    ("old checkpoint re-signed with another key", "old", "bad_checkpoint"),
    ("new checkpoint root altered", "new", "bad_checkpoint"),
]


@pytest.mark.parametrize(("name", "what", "problem"), CONSISTENCY_MUTATIONS,
                         ids=[m[0] for m in CONSISTENCY_MUTATIONS])
def test_mutated_consistency_proofs_are_rejected(
    goverify: Path, live: Live, proofs: dict[str, Any], name: str, what: str, problem: str,
) -> None:
    doc, old, new = proofs["consistency"], proofs["old"]["note"], proofs["new"]["note"]
    assert doc["proof"], doc
    if what == "proof":
        doc = _mut(doc, proof=[flip(doc["proof"][0]), *doc["proof"][1:]])
    elif what == "short":
        doc = _mut(doc, proof=doc["proof"][:-1])
    elif what == "to":
        doc = _mut(doc, to=doc["to"] + 1)
    elif what == "old":
        old = resigned(old)
    elif what == "new":
        new = with_root_flipped(new)
    tmp = proofs["tmp"]
    res = run(goverify, "consistency", "--log-key", live.log_key, "--controller", CONTROLLER,
              "--old", write(tmp, "o.note", old), "--new", write(tmp, "n.note", new),
              write(tmp, "c.json", doc))
    assert res.code == 1, (name, res.report, res.stderr)
    assert res.problems == [problem], (name, res.report)
