"""Bearer API keys.

Tokens are looked up by SHA-256 in ``ApiKeyStore`` (stored hashed; the store compares in
constant time and takes the same path for unknown tokens). A missing, malformed or
unknown token is the same 401; a known key with the wrong role is 403.
"""

from __future__ import annotations

import threading

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from ledger.apikeys import ApiKey, ApiKeyStore

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer alk_…` — create keys with `auditledger apikey create`.",
)

UNAUTHORIZED = ApiError(
    401, "unauthorized", "missing or unknown API key", {"WWW-Authenticate": "Bearer"}
)


class Authenticator:
    """Thread-safe wrapper: the API serves requests from a thread pool."""

    def __init__(self, store: ApiKeyStore) -> None:
        self.store = store
        self._lock = threading.Lock()

    def __call__(self, creds: HTTPAuthorizationCredentials | None) -> ApiKey:
        # Same work whether the header is absent or the token unknown: always one lookup.
        token = creds.credentials if creds is not None else ""
        with self._lock:
            key = self.store.authenticate(token)
        if key is None or creds is None:
            raise UNAUTHORIZED
        return key

    def store_authenticate(self, token: str) -> ApiKey | None:
        """The key of ``token`` or None (the sign-in form's path: same lookup)."""
        with self._lock:
            return self.store.authenticate(token)

    def active(self, key_id: str) -> bool:
        """Whether the key ``key_id`` still exists unrevoked (a web session checks it on
        every page, so revoking a key signs its sessions out)."""
        with self._lock:
            return self.store.active(key_id)


def require_role(key: ApiKey, roles: tuple[str, ...]) -> ApiKey:
    if key.role not in roles:
        raise ApiError(403, "forbidden", f"this route needs a key with role {' or '.join(roles)}")
    return key
