"""The log as C2SP tlog-tiles: tile paths, hash tiles and entry bundles.

A tiled log serves its Merkle tree as static resources instead of computed proofs, so a
standard client (golang.org/x/mod/sumdb/tlog, transparency-dev) can fetch what it needs,
check it against the signed checkpoint and build any proof itself (docs/tlog.md).

- Hash tile ``(L, N)`` holds, for ``i`` in ``0..W-1``, the hash of the perfect subtree of
  ``256**L`` leaves starting at leaf ``(N * 256 + i) * 256**L``: exactly the node
  ``(8 * L, N * 256 + i)`` the log already stores (``ledger.merkle.NodeGetter``), so a
  tile is ``W`` lookups and nothing is hashed.
- The entry bundle ``N`` holds leaves ``N * 256 .. N * 256 + W - 1`` as big-endian uint16
  length-prefixed leaf preimages (the canonical envelope with ``sig``), so
  ``SHA-256(0x00 || entry)`` is the leaf hash in tile ``(0, N)``.
- Full tiles have ``W == 256``; a partial tile (``.p/<W>``, ``1 <= W <= 255``) is the
  right edge of some tree size.

What a log serves is bounded by a tree size (the latest signed checkpoint's, in the API):
a tile is served when every hash in it lies inside that tree. Each such hash is of a
complete subtree, so a tile's bytes never change once served — the path names them for
ever, which is what lets HTTP caches keep them. Paths are parsed strictly (canonical
3-digit elements, no leading zeros) so each tile has exactly one path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ledger.merkle import NodeGetter

__all__ = [
    "ENTRIES",
    "MAX_LEVEL",
    "TILE_WIDTH",
    "TilePath",
    "TilePathError",
    "entry_bundle",
    "hash_tile",
    "parse_tile_path",
    "tile_fits",
    "tile_path",
]

TILE_WIDTH = 256  # hashes per full tile; tiles are 8 tree levels high
MAX_LEVEL = 63
MAX_ENTRY = 0xFFFF  # an entry's length is a uint16
ENTRIES = "entries"

_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class TilePathError(ValueError):
    """A path that names no tile: the API answers 404, as for any unknown resource."""


@dataclass(frozen=True, slots=True)
class TilePath:
    """Tile ``index`` at ``level`` (``None`` for an entry bundle), ``width`` hashes."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH


def _index_path(index: int) -> str:
    """``1234067`` -> ``x001/x234/067``: zero-padded 3-digit elements, all but the last
    prefixed ``x`` (a file system can hold every tile without file/directory clashes)."""
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + p for p in parts[:-1]), parts[-1]])


def tile_path(tile: TilePath) -> str:
    """The C2SP path below the log's prefix, e.g. ``tile/0/x001/234.p/5``."""
    level = ENTRIES if tile.level is None else str(tile.level)
    suffix = f".p/{tile.width}" if tile.partial else ""
    return f"tile/{level}/{_index_path(tile.index)}{suffix}"


def parse_tile_path(level: str, rest: str) -> TilePath:
    """Parse ``<L>`` (a level ``0..63`` or ``entries``) and ``<N>[.p/<W>]``.

    Requires the canonical spelling: what ``tile_path`` writes for the same tile. Raises
    ``TilePathError`` otherwise.
    """
    if level == ENTRIES:
        lv: int | None = None
    elif _DECIMAL.fullmatch(level) and int(level) <= MAX_LEVEL:
        lv = int(level)
    else:
        raise TilePathError(f"tile level {level!r} is not 0..{MAX_LEVEL} or {ENTRIES!r}")
    width = TILE_WIDTH
    parts = rest.split("/")
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        w = parts.pop()
        if not _DECIMAL.fullmatch(w) or not 1 <= int(w) < TILE_WIDTH:
            raise TilePathError(f"partial tile width {w!r} is not 1..{TILE_WIDTH - 1}")
        width = int(w)
        parts[-1] = parts[-1][:-2]
    if not parts or not _LAST.fullmatch(parts[-1]) or not all(
        _ELEMENT.fullmatch(p) for p in parts[:-1]
    ):
        raise TilePathError(f"tile index {rest!r} is not x-prefixed 3-digit path elements")
    index = int("".join(p.lstrip("x") for p in parts))
    tile = TilePath(lv, index, width)
    if tile_path(tile) != f"tile/{level}/{rest}":
        raise TilePathError(f"tile index {rest!r} is not in canonical form")
    return tile


def tile_fits(tile: TilePath, size: int) -> bool:
    """Whether every hash (or entry) of ``tile`` lies in the tree of ``size`` leaves."""
    level = tile.level or 0
    return (tile.index * TILE_WIDTH + tile.width) << (8 * level) <= size


def hash_tile(get: NodeGetter, tile: TilePath) -> bytes:
    """The tile's ``width`` concatenated 32-byte hashes. Requires ``tile.level`` set and
    the tile to fit the tree ``get`` holds (``tile_fits``)."""
    assert tile.level is not None
    first = tile.index * TILE_WIDTH
    return b"".join(get(8 * tile.level, first + i) for i in range(tile.width))


def entry_bundle(body_at: Callable[[int], bytes], tile: TilePath) -> bytes:
    """The bundle of leaves ``index * 256 ..`` (``width`` of them), each as a big-endian
    uint16 length then the leaf preimage. ``body_at(i)`` returns leaf ``i``'s preimage.

    Raises ``ValueError`` for an entry longer than 65535 bytes, which the format cannot
    carry; ingest's body limit keeps envelopes far below it.
    """
    out = bytearray()
    first = tile.index * TILE_WIDTH
    for i in range(first, first + tile.width):
        body = body_at(i)
        if len(body) > MAX_ENTRY:
            raise ValueError(f"leaf {i} is {len(body)} bytes; an entry bundle holds <= 65535")
        out += len(body).to_bytes(2, "big") + body
    return bytes(out)
