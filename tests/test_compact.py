"""ledger.compact against the RFC 9162 reference root: every split of a tree into a
compact range of [0, A) and the leaves A..B-1 gives the root at B."""

from __future__ import annotations

import pytest

from ledger.compact import Range, decompose, range_proof
from ledger.merkle import MemoryNodes, ProofError, ProofSizeError, leaf_hash, root_of

LEAVES = [leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
TREE = MemoryNodes.from_leaves(LEAVES)


def test_every_split_recomputes_both_roots() -> None:
    for a in range(len(LEAVES) + 1):
        left = Range(0, a, range_proof(TREE, a))
        assert len(left.hashes) == a.bit_count()
        if a:
            assert left.root() == root_of(LEAVES[:a])
        for b in range(a, len(LEAVES) + 1, 7):
            whole = Range(0, a, range_proof(TREE, a))
            for h in LEAVES[a:b]:
                whole.append(h)
            assert (whole.end, whole.root()) == (b, root_of(LEAVES[:b]))


def test_merging_adjacent_ranges_equals_appending() -> None:
    for a, b in [(0, 5), (3, 9), (5, 64), (13, 70), (64, 70)]:
        mid = Range(a, a, [])
        for h in LEAVES[a:b]:
            mid.append(h)
        left = Range(0, a, range_proof(TREE, a))
        left.merge(mid)
        assert left.root() == root_of(LEAVES[:b])
        rest = Range(b, b, [])
        for h in LEAVES[b:]:
            rest.append(h)
        left.merge(rest)
        assert left.root() == root_of(LEAVES)


def test_a_dropped_or_reordered_leaf_changes_the_root() -> None:
    good = root_of(LEAVES[:40])
    dropped = LEAVES[:17] + LEAVES[18:40]
    swapped = [*LEAVES[:17], LEAVES[18], LEAVES[17], *LEAVES[19:40]]
    for leaves in (dropped, swapped):
        rng = Range(0, 10, range_proof(TREE, 10))
        for h in leaves[10:]:
            rng.append(h)
        assert rng.root() != good


def test_shapes_are_checked() -> None:
    with pytest.raises(ProofSizeError):
        Range(0, 5, range_proof(TREE, 4))  # 5 = 4 + 1 needs two hashes
    with pytest.raises(ProofError):
        Range(3, 9, []).root()  # only a range from 0 has a root
    with pytest.raises(ProofError):
        Range(0, 4, range_proof(TREE, 4)).merge(Range(5, 5, []))  # not adjacent
    with pytest.raises(ProofError):
        decompose(5, 3)
    # [3, 9) = [3, 4) + [4, 8) on the left, [8, 9) on the right
    assert decompose(0, 13) == (0, 13) and decompose(3, 9) == (5, 1)
