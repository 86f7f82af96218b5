"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.

The log of record stores, for each controller, the hash of every *perfect* subtree: the
subtree of ``2**level`` leaves starting at leaf ``index * 2**level``. Such a hash never
changes once the subtree is complete, so it can be written once and looked up forever.
Everything here reads the tree only through a ``NodeGetter`` over those perfect subtrees;
hashes of imperfect right-edge subtrees are recomputed from at most ``log2(size)`` perfect
ones. Proof generation therefore costs ``O(log n)`` lookups and never needs the leaves.

Verification follows the RFC's algorithms literally (§2.1.3.2, §2.1.4.2) but checks sizes
and proof lengths before hashing, so each failure has its own error type.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "HashSizeError",
    "IndexOutOfRange",
    "MemoryNodes",
    "NodeGetter",
    "ProofError",
    "ProofSizeError",
    "RootMismatchError",
    "consistency_proof",
    "consistency_proof_size",
    "inclusion_proof",
    "inclusion_proof_size",
    "leaf_hash",
    "node_hash",
    "root_from_getter",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree (RFC 9162 §2.1.1)."""

NodeGetter = Callable[[int, int], bytes]
"""``get(level, index)``: hash of the perfect subtree of ``2**level`` leaves starting at leaf
``index * 2**level``. Callers of proof functions guarantee only complete subtrees are asked
for, so a getter MAY raise ``KeyError`` for anything else."""


class ProofError(ValueError):
    """A Merkle proof or its parameters do not check out."""


class RootMismatchError(ProofError):
    """The proof is well-formed but recomputes to a different root."""


class ProofSizeError(ProofError):
    """The proof has the wrong number of hashes for the claimed index and tree sizes."""


class IndexOutOfRange(ProofError):
    """Index or sizes outside what the tree can contain (e.g. ``index >= size``)."""


class HashSizeError(ProofError):
    """A hash (leaf, root or proof element) is not ``HASH_SIZE`` bytes long."""


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data). The prefix keeps leaves and interior nodes in separate
    domains, so no leaf can be passed off as a node (second-preimage defence)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != HASH_SIZE:
        raise HashSizeError(f"{what} must be {HASH_SIZE} bytes")


def _check_size(value: int, what: str) -> None:
    # bool is an int; a True "size" is always a caller bug.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise IndexOutOfRange(f"{what} must be a non-negative int, got {value!r}")


def _fold_right(hashes: Sequence[bytes]) -> bytes:
    """Root over a left-to-right list of perfect subtrees of strictly decreasing size.

    RFC 9162 splits at the largest power of two, so the leftmost (largest) subtree is
    always a left child and the rest nest to the right.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hash(get: NodeGetter, begin: int, end: int) -> bytes:
    """MTH of leaves [begin, end) from perfect subtrees only.

    Requires begin < end and begin aligned to the largest power of two <= end - begin,
    which holds for every range the RFC recursion produces from a tree rooted at 0.
    """
    pieces: list[bytes] = []
    pos = begin
    n = end - begin
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            pieces.append(get(level, pos >> level))
            pos += 1 << level
    return _fold_right(pieces)


def root_from_getter(get: NodeGetter, size: int) -> bytes:
    """Root of the first ``size`` leaves with ``popcount(size)`` lookups.

    Requires every perfect subtree in the binary decomposition of ``size`` to be stored.
    """
    _check_size(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(get, 0, size)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """Reference MTH over leaf *hashes*, the RFC 9162 §2.1.1 recursion verbatim.

    O(n); meant for tests and small trees, to check the fast paths against.
    """
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return bytes(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two < n
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


# --------------------------------------------------------------------------- appending


class Frontier:
    """Compact range over [0, size): the roots of the perfect subtrees covering it, largest
    (leftmost) first — one per set bit of ``size``.

    Enough state to append and to compute the root without reading anything back, and
    small enough (<= 64 hashes) to persist with every batch.
    """

    __slots__ = ("_hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Requires ``len(hashes) == popcount(size)``, as returned by ``hashes()``; a
        mismatch means the persisted state is corrupt, and appending on it would fork
        the log silently."""
        _check_size(size, "size")
        if len(hashes) != size.bit_count():
            raise ProofSizeError(
                f"frontier of size {size} needs {size.bit_count()} hashes, got {len(hashes)}"
            )
        for h in hashes:
            _check_hash(h, "frontier hash")
        self.size = size
        self._hashes = [bytes(h) for h in hashes]

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf *hash* (``leaf_hash(data)``, not the data) and return every perfect
        subtree this completes as ``(level, index, hash)``, level 0 (the leaf) first.

        The caller MUST store all returned nodes before publishing a checkpoint covering
        them: proofs are generated from exactly these nodes.
        """
        if type(leaf) is bytes and len(leaf) == HASH_SIZE:  # the usual case, checked inline
            h = leaf
        else:
            _check_hash(leaf, "leaf hash")
            h = bytes(leaf)
        index = self.size
        out = [(0, index, h)]
        level = 0
        while index >> level & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            out.append((level, index >> level, h))
        self._hashes.append(h)
        self.size += 1
        return out

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        return _fold_right(self._hashes)

    def hashes(self) -> list[bytes]:
        """The state to persist; ``Frontier(size, hashes)`` restores it exactly."""
        return list(self._hashes)

    @classmethod
    def from_getter(cls, get: NodeGetter, size: int) -> Frontier:
        """Rebuild the frontier of a stored tree (e.g. after restart) with
        ``popcount(size)`` lookups."""
        _check_size(size, "size")
        hashes: list[bytes] = []
        pos = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(get(level, pos >> level))
                pos += 1 << level
        return cls(size, hashes)

    def __repr__(self) -> str:
        return f"Frontier(size={self.size}, root={self.root().hex()[:16]}…)"


class MemoryNodes:
    """Dict-backed ``NodeGetter``: the in-memory twin of a stored perfect-subtree table.

    Feed it ``Frontier.append``'s output; call it as ``get(level, index)``.
    """

    __slots__ = ("_nodes", "frontier")

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self.frontier = Frontier()

    def put(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        """Store nodes as produced by ``Frontier.append`` (any frontier)."""
        for level, index, h in nodes:
            self._nodes[(level, index)] = h

    def append(self, leaf: bytes) -> None:
        """Append a leaf hash to this store's own frontier and keep the completed nodes."""
        self.put(self.frontier.append(leaf))

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MemoryNodes:
        """A store holding every perfect subtree of the given leaf hashes."""
        store = cls()
        for leaf in leaves:
            store.append(leaf)
        return store

    @property
    def size(self) -> int:
        """Leaves appended through ``append`` / ``from_leaves``."""
        return self.frontier.size

    def __call__(self, level: int, index: int) -> bytes:
        return self._nodes[(level, index)]

    def __len__(self) -> int:
        return len(self._nodes)


# --------------------------------------------------------------------------- proof sizes


def inclusion_proof_size(index: int, size: int) -> int:
    """Number of hashes in the RFC 9162 inclusion proof of leaf ``index`` in a tree of
    ``size``. Requires ``0 <= index < size``."""
    _check_size(index, "index")
    _check_size(size, "size")
    if index >= size:
        raise IndexOutOfRange(f"index {index} not in tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_size(old_size: int, new_size: int) -> int:
    """Number of hashes in the RFC 9162 consistency proof between the two sizes.
    Requires ``0 <= old_size <= new_size``."""
    _check_size(old_size, "old_size")
    _check_size(new_size, "new_size")
    if old_size > new_size:
        raise IndexOutOfRange(f"old_size {old_size} > new_size {new_size}")
    if old_size == 0 or old_size == new_size:
        return 0
    level = (old_size & -old_size).bit_length() - 1  # trailing zeros
    begin = old_size - (1 << level)  # first leaf of the last perfect subtree of old
    inner = (begin ^ (new_size - 1)).bit_length()
    seed = 0 if begin == 0 else 1  # old root is itself a node iff old_size is 2**k
    return seed + (inner - level) + (begin >> inner).bit_count()


# --------------------------------------------------------------------------- proofs


def _node_path(get: NodeGetter, level: int, begin: int, size: int) -> list[bytes]:
    """Audit path of the perfect subtree (level, begin >> level) in a tree of ``size``.

    Below ``inner`` the node and ``size - 1`` share an ancestor, so siblings are right-hand
    and complete except the topmost, which may be the imperfect right edge. At and above
    ``inner`` the path runs along the right border: only left siblings, always complete.
    """
    inner = (begin ^ (size - 1)).bit_length()
    path: list[bytes] = []
    for lv in range(level, inner):
        sibling = (begin >> lv) ^ 1
        if lv == inner - 1:
            path.append(_range_hash(get, sibling << lv, size))
        else:
            path.append(get(lv, sibling))
    for lv in range(inner, size.bit_length()):
        if begin >> lv & 1:
            path.append(get(lv, (begin >> lv) ^ 1))
    return path


def inclusion_proof(get: NodeGetter, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf-side sibling first.

    Requires ``0 <= index < size`` and every perfect subtree of the first ``size`` leaves
    in ``get``; makes at most ``2 * log2(size)`` lookups.
    """
    inclusion_proof_size(index, size)  # validates
    return _node_path(get, 0, index, size)


def consistency_proof(get: NodeGetter, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]) = SUBPROOF(old_size, D[new_size], true).

    Requires ``0 <= old_size <= new_size`` (RFC: ``0 < m``; an empty old tree is a prefix of
    every tree, so size 0 yields the empty proof, as does ``old_size == new_size``).
    The proof is the last perfect subtree of the old tree (omitted when that subtree *is*
    the old tree) followed by its audit path in the new tree.
    """
    consistency_proof_size(old_size, new_size)  # validates
    if old_size == 0 or old_size == new_size:
        return []
    level = (old_size & -old_size).bit_length() - 1
    begin = old_size - (1 << level)
    path = _node_path(get, level, begin, new_size)
    if begin == 0:
        return path
    return [get(level, begin >> level), *path]


# --------------------------------------------------------------------------- verification


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: check that leaf hash ``leaf`` is at ``index`` in the tree of
    ``size`` with ``root``. Returns None or raises a ``ProofError`` subclass.

    Requires ``0 <= index < size``; sizes and lengths are checked before any hashing, so an
    attacker-supplied proof costs at most ``len(expected proof)`` hashes.
    """
    expected = inclusion_proof_size(index, size)
    if len(proof) != expected:
        raise ProofSizeError(
            f"inclusion proof for index {index} in size {size} needs {expected} hashes, "
            f"got {len(proof)}"
        )
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root")
    for p in proof:
        _check_hash(p, "proof element")

    fn, sn = index, size - 1
    r = bytes(leaf)
    for p in proof:
        if sn == 0:  # unreachable given the length check; kept as in the RFC
            raise ProofSizeError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofSizeError("inclusion proof too short")
    if r != root:
        raise RootMismatchError(f"inclusion proof for index {index} gives a different root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: check that the tree of ``new_size`` with ``new_root`` extends the
    tree of ``old_size`` with ``old_root``. Returns None or raises a ``ProofError`` subclass.

    Requires ``0 <= old_size <= new_size``. Equal sizes need an empty proof and equal roots;
    size 0 needs an empty proof and ``old_root == EMPTY_ROOT`` (anything else is a claim
    about a non-empty tree).
    """
    expected = consistency_proof_size(old_size, new_size)
    if len(proof) != expected:
        raise ProofSizeError(
            f"consistency proof {old_size}->{new_size} needs {expected} hashes, got {len(proof)}"
        )
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for p in proof:
        _check_hash(p, "proof element")

    if old_size == 0:
        if old_root != EMPTY_ROOT:
            raise RootMismatchError("old root of the empty tree must be EMPTY_ROOT")
        return
    if old_size == new_size:
        if old_root != new_root:
            raise RootMismatchError(f"different roots for the same size {old_size}")
        return

    path = list(proof)
    if old_size & (old_size - 1) == 0:  # exact power of two: old root is the seed
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = fc = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable given the length check
            raise ProofSizeError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            fc = node_hash(c, fc)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            fc = node_hash(fc, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofSizeError("consistency proof too short")
    if fr != old_root:
        raise RootMismatchError(f"consistency proof does not reproduce the size-{old_size} root")
    if fc != new_root:
        raise RootMismatchError(f"consistency proof does not reproduce the size-{new_size} root")
