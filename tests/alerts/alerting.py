"""Helpers for the alert suites: a local webhook receiver (a real HTTP server on
127.0.0.1) that can be taken down, and the suites' fixed "now"."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from projections.alerts.sinks.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from tests.projections.projection_streams import CID

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver that records every request, verifies the signature and
    dedupes by alert id. ``up=False`` answers 503; ``stop()`` closes the port
    (connection refused); ``start()`` reopens the same port."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.requests: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.up = True
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                if not rx.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                ok = rx.secret is None or verify_signature(
                    rx.secret, self.headers[TIMESTAMP_HEADER], body,
                    self.headers[SIGNATURE_HEADER])
                doc = orjson.loads(body)
                with rx._lock:
                    rx.requests.append({"at": at, "doc": doc, "signed": ok,
                                        "id": self.headers[ID_HEADER]})
                    if not ok:
                        rx.bad_signatures += 1
                    rx.by_id.setdefault(doc["id"], {"at": at, "doc": doc})
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> Receiver:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [r["doc"]["id"] for r in self.requests if r["signed"]]



__all__ = ["CID", "NOW", "Receiver"]
