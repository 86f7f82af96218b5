"""The key-encryption key (KEK): the one secret that unlocks the key store.

Every data key and subject key in the key store is wrapped (AES-256-GCM) under a
per-controller KEK derived from this master KEK with HKDF-SHA256, so one tenant's wrapped
keys are useless under another's, and one secret is all an operator has to keep safe.

Where it comes from, first found wins (docs/erasure.md, "Keys"):
1. ``AUDITLEDGER_KEK``: the 32 bytes in base64 or base64url (a secret manager injects it);
2. ``kek_command`` in config.json: a command whose standard output is that text. This is
   the KMS hook: the KEK is kept encrypted by the KMS and the command decrypts it at start
   (``aws kms decrypt …``, ``gcloud kms decrypt …``, ``vault kv get …``), so it never rests
   in clear on the ledger's disk;
3. ``kek_file`` in config.json (default ``DIR/keys/kek``), made by ``init`` with mode 0600:
   the embedded default, fine for a demo and a single machine, not for production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import shlex
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.codes import CodedError
from ledger.config import Config
from ledger.encoding import b64url

ENV = "AUDITLEDGER_KEK"
KEK_BYTES = 32
COMMAND_TIMEOUT_S = 30


class KekError(CodedError):
    """The KEK is missing, malformed, or not the one the key store was wrapped with.

    ``code`` is stable: ``kek_missing``, ``kek_invalid``, ``kek_mismatch``."""


def kek_file(cfg: Config) -> Path:
    """Where the file source keeps the KEK (a relative ``kek_file`` is in the data dir)."""
    if not cfg.kek_file:
        return cfg.keys_dir / "kek"
    path = Path(cfg.kek_file)
    return path if path.is_absolute() else cfg.data_dir / path


def kek_source(cfg: Config) -> str:
    """``env``, ``command`` or ``file``: which of the three sources ``load_kek`` reads."""
    if os.environ.get(ENV):
        return "env"
    return "command" if cfg.kek_command else "file"


def parse_kek(text: str, where: str) -> bytes:
    """32 bytes written as base64 or base64url (padded or not), surrounding space ignored."""
    s = text.strip()
    try:
        raw = base64.b64decode(s.replace("-", "+").replace("_", "/") + "=" * (-len(s) % 4),
                               validate=True)
    except (binascii.Error, ValueError):
        raise KekError("kek_invalid", f"{where}: not base64 text") from None
    if len(raw) != KEK_BYTES:
        raise KekError("kek_invalid", f"{where}: a KEK is {KEK_BYTES} bytes, got {len(raw)}")
    return raw


def new_kek_text() -> str:
    return b64url(secrets.token_bytes(KEK_BYTES))


def write_kek_file(path: Path, text: str | None = None) -> None:
    """Write a KEK file readable by its owner only (a new random KEK if none is given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write((text or new_kek_text()) + "\n")


def ensure_kek(cfg: Config) -> None:
    """``init``: make the default KEK file unless the KEK comes from elsewhere."""
    if os.environ.get(ENV) or cfg.kek_command:
        return
    path = kek_file(cfg)
    if not path.exists():
        write_kek_file(path)


def load_kek(cfg: Config) -> bytes:
    if os.environ.get(ENV):
        return parse_kek(os.environ[ENV], ENV)
    if cfg.kek_command:
        try:
            done = subprocess.run(shlex.split(cfg.kek_command), capture_output=True,
                                  text=True, timeout=COMMAND_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KekError("kek_missing", f"kek_command could not run: {exc}") from None
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or [""])[0]
            raise KekError("kek_missing",
                           f"kek_command exited {done.returncode}: {first}".rstrip(": "))
        return parse_kek(done.stdout, "kek_command output")
    path = kek_file(cfg)
    if not path.exists():
        raise KekError("kek_missing", f"no key-encryption key: set {ENV}, kek_command or "
                       f"kek_file in config.json ({path} does not exist)")
    return parse_kek(path.read_text(), str(path))


def kek_id(kek: bytes) -> str:
    """A public name for a KEK (a hash of it): says which KEK wrapped a key store without
    revealing it, so a wrong one is named at start-up rather than failing key by key."""
    return "kek-" + b64url(hashlib.sha256(b"auditledger/kek-id/1\n" + kek).digest()[:12])


def controller_kek(kek: bytes, controller: str) -> bytes:
    """The controller's own wrapping key: HKDF-SHA256(master KEK, info = controller)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"auditledger/kek/1\n" + controller.encode()).derive(kek)
