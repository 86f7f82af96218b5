"""The C2SP tlog-tiles routes: paths, widths, bounds, caching, auth and tenant isolation.

Tiles are checked with hashing written here from the spec (SHA-256 with the RFC 9162
prefixes), not with ledger/merkle.py; tests/goverify reads the same routes with Go's
x/mod tlog client over a real server.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from ledger.tiles import TilePath, TilePathError, parse_tile_path, tile_path
from tests.api.conftest import Api
from tests.conftest import CONTROLLER, OTHER

BASE = f"/v1/controllers/{CONTROLLER}/tlog"


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 over already-hashed leaves."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node(mth(hashes[:k]), mth(hashes[k:]))


def entries(bundle: bytes) -> list[bytes]:
    out = []
    while bundle:
        n = int.from_bytes(bundle[:2], "big")
        out.append(bundle[2 : 2 + n])
        bundle = bundle[2 + n :]
    return out


@pytest.fixture
def grown(api: Api) -> int:
    """CONTROLLER's log grown past one full tile; returns the signed size."""
    ledger = api.world.ledger
    for _ in range(3):
        assert all(r.status == "accepted" for r in ledger.submit(
            [api.event() for _ in range(100)]))
    ledger.flush()
    size = ledger.log.latest_checkpoint(CONTROLLER).size
    assert 256 < size < 512
    return size


def test_checkpoint_is_the_signed_note(api: Api) -> None:
    r = api.get(f"{BASE}/checkpoint")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["cache-control"] == "private, no-cache"
    doc = api.get(f"/v1/controllers/{CONTROLLER}/checkpoint").json()
    assert r.text == doc["note"]
    body, _, sigs = r.text.partition("\n\n")
    # Extension lines (a signed time) may follow the root: clients ignore them.
    assert body.split("\n")[:3] == [f"auditledger/{CONTROLLER}", str(doc["size"]), doc["root"]]
    assert sigs.startswith("— auditledger ")


def test_tiles_recompute_the_signed_root(api: Api, grown: int) -> None:
    size = grown
    w = size - 256
    full = api.get(f"{BASE}/tile/0/000")
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert full.headers["content-type"] == "application/octet-stream"
    assert full.headers["cache-control"] == "private, max-age=31536000, immutable"
    part = api.get(f"{BASE}/tile/0/001.p/{w}")
    assert part.status_code == 200 and len(part.content) == w * 32
    top = api.get(f"{BASE}/tile/1/000.p/1")
    assert top.status_code == 200 and len(top.content) == 32
    # Level 1 holds the hash of the full level-0 tile below it.
    level0 = [full.content[i : i + 32] for i in range(0, 8192, 32)]
    assert top.content == mth(level0)
    leaves = level0 + [part.content[i : i + 32] for i in range(0, w * 32, 32)]
    root = api.get(f"/v1/controllers/{CONTROLLER}/checkpoint").json()["root"]
    assert mth(leaves) == base64.b64decode(root)

    # Entries hash to the leaves, and are the stored events' canonical bytes.
    bundle = api.get(f"{BASE}/tile/entries/000")
    assert bundle.status_code == 200
    got = entries(bundle.content)
    assert [leaf(e) for e in got] == level0
    first = api.world.ledger.log.event_at(CONTROLLER, 0)
    assert got[0] == first.body
    tail = entries(api.get(f"{BASE}/tile/entries/001.p/{w}").content)
    assert [leaf(e) for e in tail] == leaves[256:]


def test_entry_bundles_are_gzipped_when_asked(api: Api, grown: int) -> None:
    plain = api.client.get(f"{BASE}/tile/entries/000",
                           headers={**api.auth("auditor_a"), "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    raw = api.client.get(f"{BASE}/tile/entries/000",
                         headers={**api.auth("auditor_a"), "Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["vary"] == "Accept-Encoding"
    # Compressed on the wire; httpx decodes it to the same bundle.
    assert int(raw.headers["content-length"]) < len(plain.content) // 2
    assert raw.content == plain.content


@pytest.mark.parametrize("path", [
    "tile/0/001",        # full tile beyond the signed tree
    "tile/0/001.p/255",  # wider than the tree's edge
    "tile/1/000",        # a level-1 tile needs 65536 leaves
    "tile/2/000.p/1",
    "tile/entries/002.p/1",
    "tile/0/1",          # not 3 digits
    "tile/0/x000/000",   # not canonical (leading x000)
    "tile/0/000.p/0",    # empty tile
    "tile/0/000.p/256",  # not partial
    "tile/0/000.p/01",   # leading zero
    "tile/01/000",
    "tile/64/000",
    "tile/data/000",     # x/mod's name, not C2SP's
    "tile/0/x01/000",
])
def test_tiles_outside_the_tree_or_misspelt_are_not_found(api: Api, grown: int,
                                                          path: str) -> None:
    r = api.get(f"{BASE}/{path}")
    assert r.status_code == 404, (path, r.status_code, r.text)
    assert r.json()["code"] == "not_found"


def test_partial_tiles_of_earlier_sizes_stay_served(api: Api, grown: int) -> None:
    """A client holding an older checkpoint (size 7, say) still finds its partial tile."""
    r = api.get(f"{BASE}/tile/0/000.p/7")
    assert r.status_code == 200 and len(r.content) == 7 * 32
    assert r.content == api.get(f"{BASE}/tile/0/000").content[: 7 * 32]


def test_tenant_isolation_and_auth(api: Api) -> None:
    for path in ("checkpoint", "tile/0/000.p/1", "tile/entries/000.p/1"):
        assert api.get(f"{BASE}/{path}", who="auditor_b").status_code == 404
        assert api.get(f"/v1/controllers/NOPE/tlog/{path}").status_code == 404
        assert api.client.get(f"{BASE}/{path}").status_code == 401
        assert api.get(f"{BASE}/{path}", who="producer_a").status_code == 403
        assert api.get(f"{BASE}/{path}", who="admin").status_code == 200
    other = api.get(f"/v1/controllers/{OTHER}/tlog/checkpoint", who="auditor_b")
    assert other.status_code == 200 and other.text.startswith(f"auditledger/{OTHER}\n")


@pytest.mark.parametrize(("tile", "path"), [
    (TilePath(0, 0), "tile/0/000"),
    (TilePath(3, 1234067, 5), "tile/3/x001/x234/067.p/5"),
    (TilePath(None, 1000), "tile/entries/x001/000"),
    (TilePath(63, 999, 255), "tile/63/999.p/255"),
])
def test_tile_paths_round_trip(tile: TilePath, path: str) -> None:
    assert tile_path(tile) == path
    level, rest = path.split("/", 2)[1:]
    assert parse_tile_path(level, rest) == tile


def test_only_canonical_tile_paths_parse() -> None:
    for level, rest in [("0", "x000/001"), ("0", "0001"), ("0", "001.p/"), ("0", ".p/3"),
                        ("0", "001/"), ("0", "x001"), ("-1", "000"), ("0", "001.p/3/4")]:
        with pytest.raises(TilePathError):
            parse_tile_path(level, rest)
