"""Compact ranges: the few RFC 9162 subtree hashes that stand for a run of leaves.

The scheme of transparency-dev/merkle's ``compact`` package. A range ``[begin, end)`` is
held as the hashes of the perfect subtrees that tile it exactly, left to right — at most
``2 * log2(end - begin)`` of them, so a verifier streams millions of leaves through one in
bounded memory. Two adjacent ranges merge into one; a range starting at 0 has a root.

An evidence bundle proves it holds *every* leaf between two checkpoints with this: the
compact range of ``[0, A)`` (``left``, one hash per set bit of ``A``) must give the signed
root at size ``A``, and ``left`` followed by the bundle's leaves ``A..B-1`` must give the
signed root at size ``B``. Drop, insert, reorder or alter any leaf and the second root
differs; a ``left`` not taken from the tree fails the first.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.merkle import (
    HASH_SIZE,
    HashSizeError,
    NodeGetter,
    ProofError,
    ProofSizeError,
    RootMismatchError,
)
from ledger.merkle import Frontier as _Frontier
from ledger.merkle import node_hash as _node

__all__ = ["Range", "decompose", "range_proof"]


def decompose(begin: int, end: int) -> tuple[int, int]:
    """Sizes of the left and right parts of ``[begin, end)``, as bit masks: the range
    tiles into perfect subtrees of sizes ``left`` bits (ascending) then ``right`` bits
    (descending). Requires ``0 <= begin <= end``."""
    if not 0 <= begin <= end:
        raise ProofError(f"invalid range [{begin}, {end})")
    if begin == 0:
        return 0, end
    xbegin = begin - 1
    d = (xbegin ^ end).bit_length() - 1  # the highest level at which the two differ
    mask = (1 << d) - 1
    return (-begin) & mask, end & mask


class Range:
    """Compact range ``[begin, end)``: perfect-subtree hashes tiling it, left to right."""

    __slots__ = ("begin", "end", "hashes")

    def __init__(self, begin: int = 0, end: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Requires ``len(hashes)`` to be the number of subtrees tiling ``[begin, end)``."""
        left, right = decompose(begin, end)
        want = left.bit_count() + right.bit_count()
        if len(hashes) != want:
            raise ProofSizeError(f"range [{begin}, {end}) needs {want} hashes, "
                                 f"got {len(hashes)}")
        for h in hashes:
            if not isinstance(h, bytes) or len(h) != HASH_SIZE:
                raise HashSizeError(f"range hashes must be {HASH_SIZE} bytes")
        self.begin, self.end, self.hashes = begin, end, [bytes(h) for h in hashes]

    def append(self, leaf: bytes) -> None:
        """Add the leaf hash at index ``end``, merging every subtree it completes."""
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise HashSizeError(f"leaf hash must be {HASH_SIZE} bytes")
        self._push(0, leaf)

    def _push(self, level: int, h: bytes) -> None:
        # Appending a subtree of 2**level leaves at ``end`` (aligned): merge left while the
        # new subtree is a right child whose left sibling is the last hash of the range.
        index = self.end >> level
        self.end += 1 << level
        while index & 1 and self._mergeable(level):
            h = _node(self.hashes.pop(), h)
            level += 1
            index >>= 1
        self.hashes.append(h)

    def _mergeable(self, level: int) -> bool:
        # The sibling lies in the range iff the subtree it roots starts at or after begin.
        start = ((self.end - 1) >> level ^ 1) << level
        return start >= self.begin and bool(self.hashes)

    def merge(self, other: Range) -> None:
        """Extend by the adjacent range ``other`` (``other.begin == self.end``)."""
        if other.begin != self.end:
            raise ProofError(f"ranges not adjacent: {self.end} != {other.begin}")
        left, right = decompose(other.begin, other.end)
        hashes = list(other.hashes)
        levels = [lv for lv in range(left.bit_length()) if left >> lv & 1]
        levels += [lv for lv in range(right.bit_length() - 1, -1, -1) if right >> lv & 1]
        for lv, h in zip(levels, hashes, strict=True):
            self._push(lv, h)

    def root(self) -> bytes:
        """RFC 9162 root of the tree ``[0, end)``; requires ``begin == 0``."""
        if self.begin != 0:
            raise ProofError("only a range starting at leaf 0 has a root")
        return _Frontier(self.end, self.hashes).root()

    def check_root(self, expected: bytes) -> None:
        if self.root() != expected:
            raise RootMismatchError(f"leaves [0, {self.end}) do not give the signed root")


def range_proof(get: NodeGetter, size: int) -> list[bytes]:
    """The compact range of ``[0, size)`` from a stored tree: the ``left`` of a bundle."""
    return _Frontier.from_getter(get, size).hashes()
