"""Real local receivers for the sink suites: an SMTP server (aiosmtpd) and a JSON
capture HTTP server standing in for Slack's and Teams' incoming webhooks, both on a
free loopback port, both able to fail (``fail = True``: SMTP 451 / HTTP 500) and to go
away (``stop()``: connection refused) and come back on the same port (``start()``)."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import ssl
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A certificate for 127.0.0.1 made now (cryptography), as a server context and the
    PEM file a client trusts (``SSL_CERT_FILE``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem = directory / "smtp.crt", directory / "smtp.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, pem)
    return ctx, crt


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1. With ``login`` set, AUTH PLAIN is offered (without TLS
    too: loopback only) and only that username/password is accepted. ``tls``:
    ``starttls`` (the server requires STARTTLS) or ``ssl`` (implicit TLS) with the
    server context ``context``."""

    def __init__(self, login: tuple[str, str] | None = None, tls: str | None = None,
                 context: ssl.SSLContext | None = None) -> None:
        self.login = login
        self.tls, self.context = tls, context
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.failed_logins = 0
        self.fail = False
        self.port = free_port()
        self._ctl: Controller | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail:
            return "451 4.3.0 try again later"
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(msg)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str,
              auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.login is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.login)
        if not ok:
            self.failed_logins += 1
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535

    def start(self) -> SmtpReceiver:
        kw: dict[str, Any] = {}
        if self.login is not None:
            # PLAIN only: smtplib would retry a refused login with LOGIN, which aiosmtpd
            # answers by waiting for a continuation smtplib never sends
            kw = {"authenticator": self._auth, "auth_require_tls": False,
                  "auth_exclude_mechanism": ["LOGIN"]}
        if self.tls == "starttls":
            kw |= {"tls_context": self.context, "require_starttls": True}
        elif self.tls == "ssl":
            kw |= {"ssl_context": self.context}
        self._ctl = Controller(self, hostname="127.0.0.1", port=self.port, **kw)
        self._ctl.start()
        return self

    def stop(self) -> None:
        if self._ctl is not None:
            self._ctl.stop()
            self._ctl = None

    def ids(self) -> list[str]:
        with self._lock:
            return [m["X-Auditledger-Alert-Id"] for m in self.messages]


class JsonReceiver:
    """Records every JSON POST (path, headers, document) answered 2xx; ``fail`` answers
    500 and records nothing. ``status`` is the success code (Slack 200, Teams 202)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.fail = False
        self.posts: list[dict[str, Any]] = []
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def url(self, path: str = "/services/T000/B000/XXXXsecretXXXX") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> JsonReceiver:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if rx.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                with rx._lock:
                    rx.posts.append({"path": self.path, "headers": dict(self.headers),
                                     "doc": orjson.loads(body)})
                self.send_response(rx.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
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
            return [p["headers"]["X-Auditledger-Alert-Id"] for p in self.posts]
