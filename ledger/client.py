"""Producer clients: the same ``submit`` over HTTP or straight into a local data dir.

Both take envelopes that are already signed (``ledger.envelope.complete``) and return one
result dict per envelope, ``{event_id, status, code?, detail?, index?, leaf_hash?}``.
The HTTP client retries transport failures with backoff: resubmitting is safe because
ingest is idempotent on ``event_id``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson


class Client:
    def __init__(self, url: str, api_key: str, retries: int = 8, timeout: float = 60.0) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
        )
        self.retries = retries

    def submit(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        body = orjson.dumps(list(envelopes))
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                resp = self._http.post("/v1/events", content=body)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            else:
                if resp.status_code < 500 and resp.status_code != 429:
                    if resp.status_code >= 400 and not resp.content.startswith(b"["):
                        raise RuntimeError(f"ingest refused the batch: {resp.text[:300]}")
                    return orjson.loads(resp.content)
                if attempt == self.retries:
                    resp.raise_for_status()
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()


class DirectClient:
    """Writes into a local data dir, through the same ingest checks as the API."""

    def __init__(self, data_dir: Path) -> None:
        from ledger.service import Ledger

        self.ledger = Ledger.open(data_dir)

    def submit(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.ledger.submit(list(envelopes))]

    def close(self) -> None:
        self.ledger.close()
