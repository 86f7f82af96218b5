"""RFC 9162 Merkle tree: known answers, exhaustive small trees, properties, mutated proofs.

Known-answer vectors are those of transparency-dev/merkle (proof/verify_test.go), which
come from certificate-transparency-go: eight leaves, roots for sizes 1..8, and a few
inclusion and consistency proofs. The mutation table ports the idea of that project's
``testdata/`` directory: every corruption of a good proof must fail, with the right error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    HashSizeError,
    IndexOutOfRange,
    MemoryNodes,
    ProofError,
    ProofSizeError,
    RootMismatchError,
    consistency_proof,
    consistency_proof_size,
    inclusion_proof,
    inclusion_proof_size,
    leaf_hash,
    node_hash,
    root_from_getter,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------- vectors

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (index, size, proof) — index is 0-based here (the Go table is 1-based).
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

KAT_HASHES = [leaf_hash(x) for x in LEAVES]
KAT_STORE = MemoryNodes.from_leaves(KAT_HASHES)


def test_primitives() -> None:
    assert HASH_SIZE == 32
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of([]) == EMPTY_ROOT
    assert root_from_getter(KAT_STORE, 0) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT
    assert leaf_hash(b"") == ROOTS[0]
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize("size", range(1, 9))
def test_known_roots(size: int) -> None:
    want = ROOTS[size - 1]
    assert root_of(KAT_HASHES[:size]) == want
    assert root_from_getter(KAT_STORE, size) == want
    f = Frontier()
    for leaf in KAT_HASHES[:size]:
        f.append(leaf)
    assert f.root() == want


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_known_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(KAT_STORE, index, size) == proof
    verify_inclusion(KAT_HASHES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_known_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(KAT_STORE, old, new) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


# --------------------------------------------------------------------------- fixtures


def make_leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(8, "big")) for i in range(n)]


SMALL_N = 300
SMALL_LEAVES = make_leaves(SMALL_N)
SMALL_STORE = MemoryNodes.from_leaves(SMALL_LEAVES)
SMALL_ROOTS = [root_of(SMALL_LEAVES[:n]) for n in range(SMALL_N + 1)]

BIG_N = (1 << 16) + 12_345  # not a power of two; ~150k stored nodes
BIG_LEAVES = make_leaves(BIG_N, b"big")
BIG_STORE = MemoryNodes.from_leaves(BIG_LEAVES)


class StrictGetter:
    """Getter that fails on any non-perfect or out-of-tree node and counts lookups."""

    def __init__(self, store: MemoryNodes, size: int) -> None:
        self.store, self.size, self.calls = store, size, 0

    def __call__(self, level: int, index: int) -> bytes:
        assert level >= 0 and index >= 0
        assert (index + 1) << level <= self.size, f"node ({level},{index}) beyond {self.size}"
        self.calls += 1
        return self.store(level, index)


# --------------------------------------------------------------------------- exhaustive


def test_roots_all_small_sizes() -> None:
    f = Frontier()
    for n in range(1, SMALL_N + 1):
        f.append(SMALL_LEAVES[n - 1])
        assert f.root() == SMALL_ROOTS[n]
        assert root_from_getter(SMALL_STORE, n) == SMALL_ROOTS[n]
        assert Frontier.from_getter(SMALL_STORE, n).hashes() == f.hashes()


def test_all_inclusion_proofs_up_to_130() -> None:
    for size in range(1, 131):
        for index in range(size):
            proof = inclusion_proof(SMALL_STORE, index, size)
            assert len(proof) == inclusion_proof_size(index, size)
            verify_inclusion(SMALL_LEAVES[index], index, size, proof, SMALL_ROOTS[size])


def test_all_consistency_proofs_up_to_130() -> None:
    for new in range(0, 131):
        for old in range(0, new + 1):
            proof = consistency_proof(SMALL_STORE, old, new)
            assert len(proof) == consistency_proof_size(old, new)
            verify_consistency(old, new, SMALL_ROOTS[old], SMALL_ROOTS[new], proof)


# --------------------------------------------------------------------------- properties


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_inclusion_property_small(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, SMALL_N), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    get = StrictGetter(SMALL_STORE, size)
    proof = inclusion_proof(get, index, size)
    assert get.calls <= 2 * size.bit_length()
    verify_inclusion(SMALL_LEAVES[index], index, size, proof, SMALL_ROOTS[size])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_consistency_property_small(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, SMALL_N), label="new")
    old = data.draw(st.integers(1, new), label="old")
    get = StrictGetter(SMALL_STORE, new)
    proof = consistency_proof(get, old, new)
    assert get.calls <= 2 * new.bit_length() + 1
    verify_consistency(old, new, SMALL_ROOTS[old], SMALL_ROOTS[new], proof)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_proofs_large_tree(data: st.DataObject) -> None:
    new = data.draw(
        st.one_of(st.integers(1, BIG_N), st.sampled_from([BIG_N, 1 << 16, (1 << 16) + 1])),
        label="new",
    )
    old = data.draw(st.integers(1, new), label="old")
    index = data.draw(st.integers(0, new - 1), label="index")
    get = StrictGetter(BIG_STORE, new)
    new_root = root_from_getter(get, new)
    old_root = root_from_getter(get, old)
    get.calls = 0
    proof = inclusion_proof(get, index, new)
    assert get.calls <= 2 * new.bit_length()
    verify_inclusion(BIG_LEAVES[index], index, new, proof, new_root)
    verify_consistency(old, new, old_root, new_root, consistency_proof(get, old, new))


def test_large_root_matches_reference() -> None:
    assert root_from_getter(BIG_STORE, BIG_N) == root_of(BIG_LEAVES)
    assert BIG_STORE.frontier.root() == root_of(BIG_LEAVES)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 200),
    st.lists(st.binary(min_size=0, max_size=8), min_size=1, max_size=70),
)
def test_frontier_restore_continues_identically(prefix: int, more: list[bytes]) -> None:
    original = Frontier()
    for leaf in SMALL_LEAVES[:prefix]:
        original.append(leaf)
    restored = Frontier(original.size, original.hashes())
    assert restored.root() == original.root()
    from_store = Frontier.from_getter(SMALL_STORE, prefix)
    for data in more:
        leaf = leaf_hash(data)
        out = original.append(leaf)
        assert restored.append(leaf) == out
        assert from_store.append(leaf) == out
    assert restored.root() == original.root() == from_store.root()
    assert restored.size == prefix + len(more)


def test_append_returns_completed_subtrees() -> None:
    f = Frontier()
    outs = [f.append(leaf) for leaf in KAT_HASHES]
    assert [[(lv, ix) for lv, ix, _ in out] for out in outs] == [
        [(0, 0)],
        [(0, 1), (1, 0)],
        [(0, 2)],
        [(0, 3), (1, 1), (2, 0)],
        [(0, 4)],
        [(0, 5), (1, 2)],
        [(0, 6)],
        [(0, 7), (1, 3), (2, 1), (3, 0)],
    ]
    assert outs[-1][-1][2] == ROOTS[7]
    assert outs[3][-1][2] == ROOTS[3]


def test_frontier_rejects_corrupt_state() -> None:
    with pytest.raises(ProofSizeError):
        Frontier(3, [ROOTS[0]])
    with pytest.raises(HashSizeError):
        Frontier(1, [b"short"])
    with pytest.raises(IndexOutOfRange):
        Frontier(-1)
    with pytest.raises(HashSizeError):
        Frontier().append(b"raw event bytes: not a leaf hash!")


# --------------------------------------------------------------------------- mutations

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def flip(h: bytes, bit: int = 3) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def expected_inclusion_error(index: int, size: int, proof: list[bytes]) -> type[ProofError]:
    if not 0 <= index < size:
        return IndexOutOfRange
    if len(proof) != inclusion_proof_size(index, size):
        return ProofSizeError
    return RootMismatchError


# name -> (leaf, index, size, proof, root) -> mutated tuple, or None when not applicable
InclusionCase = tuple[bytes, int, int, list[bytes], bytes]
INCLUSION_MUTATIONS: dict[str, Callable[[InclusionCase], InclusionCase | None]] = {
    "flip bit in proof[0]": lambda c: (
        (c[0], c[1], c[2], [flip(c[3][0]), *c[3][1:]], c[4]) if c[3] else None
    ),
    "flip bit in proof[-1]": lambda c: (
        (c[0], c[1], c[2], [*c[3][:-1], flip(c[3][-1])], c[4]) if c[3] else None
    ),
    "drop last element": lambda c: (c[0], c[1], c[2], c[3][:-1], c[4]) if c[3] else None,
    "drop first element": lambda c: (c[0], c[1], c[2], c[3][1:], c[4]) if c[3] else None,
    "append extra element": lambda c: (c[0], c[1], c[2], [*c[3], SOME_HASH], c[4]),
    "append root": lambda c: (c[0], c[1], c[2], [*c[3], c[4]], c[4]),
    "prepend root": lambda c: (c[0], c[1], c[2], [c[4], *c[3]], c[4]),
    "swap first two": lambda c: (
        (c[0], c[1], c[2], [c[3][1], c[3][0], *c[3][2:]], c[4]) if len(c[3]) > 1 else None
    ),
    "index - 1": lambda c: (c[0], c[1] - 1, c[2], c[3], c[4]) if c[1] > 0 else None,
    "index + 1": lambda c: (c[0], c[1] + 1, c[2], c[3], c[4]),
    "index ^ 2": lambda c: (c[0], c[1] ^ 2, c[2], c[3], c[4]),
    "size * 2": lambda c: (c[0], c[1], c[2] * 2, c[3], c[4]),
    "size // 2": lambda c: (c[0], c[1], c[2] // 2, c[3], c[4]),
    "wrong leaf": lambda c: (flip(c[0]), c[1], c[2], c[3], c[4]),
    "leaf is proof[0]": lambda c: (c[3][0], c[1], c[2], c[3], c[4]) if c[3] else None,
    "empty-tree root": lambda c: (c[0], c[1], c[2], c[3], EMPTY_ROOT),
    "random root": lambda c: (c[0], c[1], c[2], c[3], SOME_HASH),
}

INCLUSION_CASES = [(0, 1), (0, 8), (5, 8), (2, 3), (1, 5), (6, 7), (12, 13), (0, 300)]
INCLUSION_CASES += [(i, 300) for i in (1, 100, 255, 256, 298, 299)]
INCLUSION_CASES += [(i, 257) for i in (0, 128, 255, 256)]


def good_inclusion(index: int, size: int) -> InclusionCase:
    proof = inclusion_proof(SMALL_STORE, index, size)
    return (SMALL_LEAVES[index], index, size, proof, SMALL_ROOTS[size])


# Only the combinations that apply (e.g. "swap" needs two elements).
INCLUSION_TABLE = [
    pytest.param(name, index, size, id=f"{index}/{size}: {name}")
    for index, size in INCLUSION_CASES
    for name, mutate in sorted(INCLUSION_MUTATIONS.items())
    if mutate(good_inclusion(index, size)) is not None
]


@pytest.mark.parametrize(("mutation", "index", "size"), INCLUSION_TABLE)
def test_inclusion_mutation_fails(mutation: str, index: int, size: int) -> None:
    good = good_inclusion(index, size)
    verify_inclusion(*good)
    bad = INCLUSION_MUTATIONS[mutation](good)
    assert bad is not None
    want = expected_inclusion_error(bad[1], bad[2], bad[3])
    with pytest.raises(want):
        verify_inclusion(*bad)


ConsistencyCase = tuple[int, int, bytes, bytes, list[bytes]]
CONSISTENCY_MUTATIONS: dict[str, Callable[[ConsistencyCase], ConsistencyCase | None]] = {
    "flip bit in proof[0]": lambda c: (c[0], c[1], c[2], c[3], [flip(c[4][0], 4), *c[4][1:]]),
    "flip bit in proof[-1]": lambda c: (c[0], c[1], c[2], c[3], [*c[4][:-1], flip(c[4][-1])]),
    "drop last element": lambda c: (c[0], c[1], c[2], c[3], c[4][:-1]),
    "drop first element": lambda c: (c[0], c[1], c[2], c[3], c[4][1:]),
    "empty proof": lambda c: (c[0], c[1], c[2], c[3], []),
    "append extra element": lambda c: (c[0], c[1], c[2], c[3], [*c[4], SOME_HASH]),
    "append old root": lambda c: (c[0], c[1], c[2], c[3], [*c[4], c[2]]),
    "prepend new root": lambda c: (c[0], c[1], c[2], c[3], [c[3], *c[4]]),
    "prepend proof[0]": lambda c: (c[0], c[1], c[2], c[3], [c[4][0], *c[4]]),
    "swap first two": lambda c: (
        (c[0], c[1], c[2], c[3], [c[4][1], c[4][0], *c[4][2:]]) if len(c[4]) > 1 else None
    ),
    "old size - 1": lambda c: (c[0] - 1, c[1], c[2], c[3], c[4]),
    "old size + 1": lambda c: (c[0] + 1, c[1], c[2], c[3], c[4]),
    "old size ^ 2": lambda c: (c[0] ^ 2, c[1], c[2], c[3], c[4]),
    "new size * 2": lambda c: (c[0], c[1] * 2, c[2], c[3], c[4]),
    "new size // 2": lambda c: (c[0], c[1] // 2, c[2], c[3], c[4]),
    "swapped roots": lambda c: (c[0], c[1], c[3], c[2], c[4]),
    "wrong old root": lambda c: (c[0], c[1], flip(c[2]), c[3], c[4]),
    "wrong new root": lambda c: (c[0], c[1], c[2], flip(c[3]), c[4]),
    "swapped sizes": lambda c: (c[1], c[0], c[2], c[3], c[4]),
}

CONSISTENCY_CASES = [(1, 8), (6, 8), (2, 5), (6, 7), (3, 300), (4, 300), (150, 257)]
CONSISTENCY_CASES += [(255, 256), (256, 257), (1, 2), (128, 300), (299, 300), (7, 13)]


def expected_consistency_error(old: int, new: int, proof: list[bytes]) -> type[ProofError]:
    if not 0 <= old <= new:
        return IndexOutOfRange
    if len(proof) != consistency_proof_size(old, new):
        return ProofSizeError
    return RootMismatchError


def good_consistency(old: int, new: int) -> ConsistencyCase:
    proof = consistency_proof(SMALL_STORE, old, new)
    return (old, new, SMALL_ROOTS[old], SMALL_ROOTS[new], proof)


CONSISTENCY_TABLE = [
    pytest.param(name, old, new, id=f"{old}->{new}: {name}")
    for old, new in CONSISTENCY_CASES
    for name, mutate in sorted(CONSISTENCY_MUTATIONS.items())
    if mutate(good_consistency(old, new)) is not None
]


@pytest.mark.parametrize(("mutation", "old", "new"), CONSISTENCY_TABLE)
def test_consistency_mutation_fails(mutation: str, old: int, new: int) -> None:
    good = good_consistency(old, new)
    verify_consistency(*good)
    bad = CONSISTENCY_MUTATIONS[mutation](good)
    assert bad is not None
    want = expected_consistency_error(bad[0], bad[1], bad[4])
    with pytest.raises(want):
        verify_consistency(*bad)


def test_mutation_error_types_are_the_specific_ones() -> None:
    """Pin the table's expectations for one case, so a regression in
    ``expected_*_error`` cannot silently weaken every row."""
    proof = inclusion_proof(SMALL_STORE, 5, 8)
    leaf, root = SMALL_LEAVES[5], SMALL_ROOTS[8]
    with pytest.raises(RootMismatchError):
        verify_inclusion(leaf, 5, 8, [flip(proof[0]), *proof[1:]], root)
    with pytest.raises(RootMismatchError):
        verify_inclusion(leaf, 5, 8, [proof[1], proof[0], proof[2]], root)
    with pytest.raises(RootMismatchError):
        verify_inclusion(leaf, 4, 8, proof, root)
    with pytest.raises(RootMismatchError):
        verify_inclusion(flip(leaf), 5, 8, proof, root)
    with pytest.raises(ProofSizeError):
        verify_inclusion(leaf, 5, 8, proof[:-1], root)
    with pytest.raises(ProofSizeError):
        verify_inclusion(leaf, 5, 8, [*proof, root], root)
    with pytest.raises(ProofSizeError):
        verify_inclusion(leaf, 5, 16, proof, root)
    with pytest.raises(IndexOutOfRange):
        verify_inclusion(leaf, 8, 8, proof, root)
    cproof = consistency_proof(SMALL_STORE, 6, 8)
    with pytest.raises(RootMismatchError):
        verify_consistency(6, 8, SMALL_ROOTS[8], SMALL_ROOTS[6], cproof)
    with pytest.raises(IndexOutOfRange):
        verify_consistency(8, 6, SMALL_ROOTS[6], SMALL_ROOTS[8], cproof)


# --------------------------------------------------------------------------- edge cases


def test_trivial_consistency() -> None:
    r = SMALL_ROOTS[5]
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 5, EMPTY_ROOT, r, [])
    verify_consistency(5, 5, r, r, [])
    with pytest.raises(RootMismatchError):
        verify_consistency(5, 5, r, SMALL_ROOTS[6], [])
    with pytest.raises(RootMismatchError):
        verify_consistency(0, 5, r, r, [])
    with pytest.raises(ProofSizeError):
        verify_consistency(5, 5, r, r, [EMPTY_ROOT])
    with pytest.raises(ProofSizeError):
        verify_consistency(1, 2, SMALL_ROOTS[1], SMALL_ROOTS[2], [])


@pytest.mark.parametrize(
    ("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 4), (True, 4), (0, -1)]
)
def test_inclusion_bad_indices(index: int, size: int) -> None:
    with pytest.raises(IndexOutOfRange):
        inclusion_proof(SMALL_STORE, index, size)
    with pytest.raises(IndexOutOfRange):
        verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


def test_consistency_bad_sizes() -> None:
    for old, new in [(2, 1), (-1, 3), (1, -1)]:
        with pytest.raises(IndexOutOfRange):
            consistency_proof(SMALL_STORE, old, new)
        with pytest.raises(IndexOutOfRange):
            verify_consistency(old, new, SOME_HASH, SOME_HASH, [])


def test_wrong_hash_lengths() -> None:
    proof = inclusion_proof(SMALL_STORE, 1, 2)
    leaf, root = SMALL_LEAVES[1], SMALL_ROOTS[2]
    with pytest.raises(HashSizeError):
        verify_inclusion(leaf + b"\x00", 1, 2, proof, root)
    with pytest.raises(HashSizeError):
        verify_inclusion(leaf, 1, 2, proof, root[:-1])
    with pytest.raises(HashSizeError):
        verify_inclusion(leaf, 1, 2, [proof[0] + b"trailing"], root)
    with pytest.raises(HashSizeError):
        verify_inclusion(b"", 0, 1, [], b"")
    cproof = consistency_proof(SMALL_STORE, 3, 4)
    with pytest.raises(HashSizeError):
        verify_consistency(3, 4, SMALL_ROOTS[3], SMALL_ROOTS[4], [cproof[0][:-1], *cproof[1:]])


def test_single_leaf_tree() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(h, 0, 1, [], h)  # root of a 1-leaf tree is the leaf hash
    with pytest.raises(RootMismatchError):
        verify_inclusion(h, 0, 1, [], SOME_HASH)


def test_proofs_touch_only_perfect_subtrees_in_big_tree() -> None:
    get = StrictGetter(BIG_STORE, BIG_N)
    for index in (0, 1, BIG_N // 2, BIG_N - 2, BIG_N - 1):
        get.calls = 0
        inclusion_proof(get, index, BIG_N)
        assert get.calls <= 2 * BIG_N.bit_length()
    for old in (1, 2, 3, 1 << 16, (1 << 16) + 1, BIG_N - 1):
        get.calls = 0
        consistency_proof(get, old, BIG_N)
        assert get.calls <= 2 * BIG_N.bit_length() + 1


def test_missing_node_surfaces_as_key_error() -> None:
    with pytest.raises(KeyError):
        inclusion_proof(MemoryNodes(), 0, 2)
