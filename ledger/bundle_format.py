"""The evidence bundle's member names, manifest lines and container reading.

The contract is docs/verification.md (format ``auditledger-bundle/2``). The builder
(``ledger.bundle``) and the verifier (``ledger.bundle_check``) both take their names from
here, so the two cannot drift apart.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

FORMAT = "auditledger-bundle/2"
MANIFEST_NOTE = "manifest.note"
MANIFEST_JSON = "manifest.json"
EVENTS = "events.jsonl"
CONTEXT = "context.jsonl"
CITED = "cited.jsonl"
CITED_PROOFS = "proofs/cited.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
RANGE = "proofs/range.json"
INCLUSION = "proofs/inclusion.jsonl"
CONSISTENCY = "proofs/consistency.jsonl"
LATEST = "consistency.json"
PRODUCERS = "keys/producers.json"
LOG_KEYS = "keys/log.pub"
REPORT_JSON = "report/accountability.json"
REPORT_HTML = "report/accountability.html"
README_NAME = "README.txt"
UNBOUNDED = "-"

README = """auditledger evidence bundle ({format})

Verify offline, with only public keys:

    auditledger verify THIS.zip --log-key '<the log key you trust>'

Without --log-key the key in keys/log.pub is used: that proves the bundle is intact, not
that it comes from the ledger you trust. events.jsonl holds every leaf between two signed
checkpoints (the period's edges); proofs/range.json lets the verifier recompute both
signed roots from them, so no event of the range can be missing. The format is described
in docs/verification.md of auditledger.
"""


class BundleError(ValueError):
    """A bundle cannot be built (e.g. no checkpoint yet) or read at all."""


@dataclass
class Manifest:
    """The signed manifest's fields (``manifest.note``)."""

    controller: str
    period_from: str | None
    period_to: str | None
    begin: int
    end: int
    start_size: int
    end_size: int
    latest_size: int
    created: str
    digests: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            FORMAT, self.controller,
            f"period {self.period_from or UNBOUNDED} {self.period_to or UNBOUNDED}",
            f"range {self.begin} {self.end}",
            f"edges {self.start_size} {self.end_size} {self.latest_size}",
            f"created {self.created}",
            *(f"{digest} {name}" for name, digest in self.digests.items()),
        ]

    @classmethod
    def parse(cls, text: str) -> Manifest:
        """Strict inverse of ``lines``; raises ValueError naming the bad line."""
        lines = text.rstrip("\n").split("\n")
        if len(lines) < 6 or lines[0] != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        words = [line.split(" ") for line in lines[2:6]]
        heads = ["period", "range", "edges", "created"]
        lens = [3, 3, 4, 2]
        for w, head, n in zip(words, heads, lens, strict=True):
            if w[0] != head or len(w) != n:
                raise ValueError(f"manifest line {head!r} malformed")
        nums = [int(x) for x in words[1][1:] + words[2][1:]]
        if any(x < 0 for x in nums):
            raise ValueError("negative size in the manifest")
        digests: dict[str, str] = {}
        for line in lines[6:]:
            digest, sep, name = line.partition(" ")
            if not sep or len(digest) != 64 or name in digests:
                raise ValueError(f"manifest digest line malformed: {line[:80]!r}")
            digests[name] = digest
        f, t = (None if x == UNBOUNDED else x for x in words[0][1:])
        return cls(lines[1], f, t, nums[0], nums[1], nums[2], nums[3], nums[4],
                   words[3][1], digests)


class Members:
    """The members of a bundle, from a zip file or an unzipped directory.

    Directory entries are not members (``zip -r`` adds them). A name given twice is kept
    once (the first) and listed in ``duplicates``: Python's zipfile reads the last, Go's
    archive/zip the first, so such a zip means different things to different verifiers.
    """

    def __init__(self, target: Path | str | bytes) -> None:
        self.duplicates: list[str] = []
        self._zip: zipfile.ZipFile | None = None
        self._dir: Path | None = None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        if isinstance(target, bytes):
            self._open_zip(io.BytesIO(target))
        elif Path(target).is_dir():
            self._dir = Path(target)
            self.names = sorted(
                p.relative_to(self._dir).as_posix() for p in self._dir.rglob("*")
                if p.is_file())
        else:
            self._open_zip(Path(target))

    def _open_zip(self, where: io.BytesIO | Path) -> None:
        try:
            self._zip = zipfile.ZipFile(where)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
            raise BundleError(f"not an evidence bundle: {exc}") from None
        names: list[str] = []
        for info in self._zip.infolist():
            name = info.filename
            if name.startswith("./"):
                name = name[2:]
            if info.is_dir() or name == "":
                continue
            if name in self._infos:
                self.duplicates.append(name)
                continue
            self._infos[name] = info
            names.append(name)
        self.names = sorted(names)

    def __contains__(self, name: str) -> bool:
        return name in self._infos if self._zip else name in self.names

    def open(self, name: str) -> IO[bytes]:
        """A binary stream of the member (KeyError if absent)."""
        if self._zip is not None:
            return self._zip.open(self._infos[name])
        assert self._dir is not None
        if name not in self.names:
            raise KeyError(name)
        return (self._dir / name).open("rb")

    def read(self, name: str, default: bytes | None = None) -> bytes | None:
        if name not in self:
            return default
        with self.open(name) as f:
            return f.read()

    def lines(self, name: str) -> Iterator[tuple[int, bytes]]:
        """(line number, line without the newline) of a JSON Lines member, streamed."""
        if name not in self:
            return
        with self.open(name) as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield n, line.rstrip(b"\n")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
