"""The keys a producer needs besides its signing key: the controller's subject key (for
``psn:`` pseudonyms) and subjects' data keys (for ``sealed`` fields).

The subject key reaches a producer only through ``auditledger subject export-key``, run by
an admin on the ledger host: a small JSON file (mode 0600), read with
``read_subject_key_file``. Data keys are fetched per subject from the ledger
(``POST /v1/controllers/{c}/subjects/data-key``) or taken from a local ``KeyStore``, and
are held in this process's memory only — never written to the outbox or anywhere else.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import httpx
import orjson

from ledger.client import Refused, Unreachable, _reason
from ledger.encoding import EncodingError, b64url, unb64url

SUBJECT_KEY_FORMAT = "auditledger-subject-key/1"


class SubjectKeyFileError(ValueError):
    """A subject-key file that is not one ``export-key`` wrote, or that others may read."""


def fingerprint(key: bytes) -> str:
    """``sk-`` + 16 hex digits of SHA-256 of the key: names the key in logs and in the
    export's output without revealing it."""
    return "sk-" + hashlib.sha256(b"auditledger/subject-key\n" + key).hexdigest()[:16]


def subject_key_doc(controller: str, key: bytes, region: str | None) -> dict[str, Any]:
    return {"format": SUBJECT_KEY_FORMAT, "controller": controller, "region": region,
            "key": b64url(key), "fingerprint": fingerprint(key)}


def write_subject_key_file(path: Path, controller: str, key: bytes,
                           region: str | None) -> dict[str, Any]:
    """Write the file with mode 0600 from the start (never readable by others, not even
    for a moment), refusing to overwrite; returns the document without the key."""
    doc = subject_key_doc(controller, key, region)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE))
        fh.flush()
        os.fsync(fh.fileno())
    return {k: v for k, v in doc.items() if k != "key"}


def read_subject_key_file(path: Path) -> tuple[str, bytes, str | None]:
    """``(controller, subject_key, region)`` from an exported file."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SubjectKeyFileError(f"{path} is readable by others (mode {mode:o}); "
                                  "chmod 600 it")
    try:
        doc = orjson.loads(path.read_bytes())
        if doc.get("format") != SUBJECT_KEY_FORMAT:
            raise SubjectKeyFileError(f"{path}: not an {SUBJECT_KEY_FORMAT} file")
        key = unb64url(doc["key"], 32)
        return str(doc["controller"]), key, doc.get("region")
    except (orjson.JSONDecodeError, AttributeError, KeyError, EncodingError) as exc:
        raise SubjectKeyFileError(f"{path}: not a subject-key file ({exc})") from None


class HttpDataKeys:
    """Data keys from ``POST /v1/controllers/{c}/subjects/data-key``, cached in memory.

    A cached key is used for at most ``ttl`` seconds: when a subject is erased, the ledger
    hands out a new key for anything sealed afterwards, and a producer that kept the old
    (destroyed) one would seal new personal data nobody can read. At most ``max_keys``
    are kept (least recently used go first)."""

    def __init__(self, url: str, api_key: str, ttl: float = 300.0, max_keys: int = 10_000,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.ttl, self.max_keys = ttl, max_keys
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}"})
        self._cache: OrderedDict[tuple[str, str], tuple[float, str, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def data_key(self, controller: str, subject: str) -> tuple[str, bytes]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((controller, subject))
            if hit is not None and now - hit[0] < self.ttl:
                self._cache.move_to_end((controller, subject))
                return hit[1], hit[2]
        try:
            resp = self._http.post(f"/v1/controllers/{controller}/subjects/data-key",
                                   json={"subject": subject})
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.url} for a data key: "
                              f"{type(exc).__name__}: {exc}") from None
        if resp.status_code != 200:
            raise Refused(f"{self.url} gave no data key: {_reason(resp)}")
        doc = resp.json()
        kid, key = doc["kid"], unb64url(doc["key"], 32)
        with self._lock:
            self._cache[(controller, subject)] = (now, kid, key)
            while len(self._cache) > self.max_keys:
                self._cache.popitem(last=False)
        return kid, key

    def close(self) -> None:
        self._http.close()


def export_subject_key(ledger: Any, controller: str, out: Path) -> dict[str, Any]:
    """``auditledger subject export-key``: the controller's subject key (the key store's,
    ``KeyStore.subject_key``) to ``out`` for a producer that pseudonymises itself.

    What is kept of the export is one line in ``DIR/keys/subject-key-exports.jsonl`` — when,
    which controller, the key's fingerprint — so the DPO can say which copies exist;
    nothing personal (no identifier, no pseudonym, no user name) is written anywhere."""
    from ledger.clock import format_rfc3339
    from ledger.webforms import subject_key

    ctl = ledger.registry.controllers.get(controller)
    if ctl is None:
        raise ValueError(f"controller {controller} is not registered")
    if out.exists():
        raise ValueError(f"{out} exists; not overwriting a key file")
    doc = write_subject_key_file(out, controller, subject_key(ledger, controller),
                                 ctl.country)
    record = {"at": format_rfc3339(ledger.clock.now()), "controller": controller,
              "fingerprint": doc["fingerprint"]}
    trail = ledger.cfg.keys_dir / "subject-key-exports.jsonl"
    with trail.open("ab") as fh:
        fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
    os.chmod(trail, 0o600)
    return {**doc, "file": str(out)}
