"""What a receiver of a controller's alerts is, checked in one place for the HTTP routes
and the CLI: ``sink_spec`` validates the fields of one ``kind`` and splits them into
what may be shown (``config``, ``url`` of a signed webhook) and the ``secret``, which
only the deliverer reads.

Kinds:

- ``webhook`` — signed POST of the alert JSON (``url``; the HMAC secret is generated).
- ``email`` — SMTP (``host``, ``port``, ``security`` starttls | ssl | none, optional
  ``username`` + password, ``from``, ``to``: a list). The password is the secret.
- ``slack`` / ``teams`` — an incoming-webhook URL, which is itself the credential
  (anyone holding it can post to the channel): the whole URL is the secret, only its
  host is shown.

``base_url`` (any kind but ``webhook``) is where the auditor pages are served: the
human-readable messages link to the case there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.alerts.sinks import AlertSink

KINDS = ("webhook", "email", "slack", "teams")
SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
#: An absolute http(s) URL: an ASCII host part (an IDN host in its xn-- form), then no
#: space and no control character. The webhook routes' schema pattern too: explicit
#: classes, read alike by Python, the API's validator and JSON Schema clients.
URL_PATTERN = (r"^[Hh][Tt][Tt][Pp][Ss]?://[\x21-\x22\x24-\x2e\x30-\x3e\x40-\x7e]+"
               r"([/?#][^\x00-\x20\x7f]*)?$")
URL_RE = re.compile(URL_PATTERN)
#: One mailbox, ASCII (RFC 5321 dot-atom characters, no SMTPUTF8), no display name:
#: nothing that could break a header. Explicit classes, so Python, the API's schema
#: validator and JSON Schema clients read the pattern alike.
ADDRESS_PATTERN = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+$"
HOST_PATTERN = r"^[A-Za-z0-9.:\[\]-]{1,253}$"
#: A login name on one line; a password of printable ASCII (what smtplib can send).
USERNAME_PATTERN = r"^[^\r\n]{1,256}$"
PASSWORD_PATTERN = r"^[ -~]{1,1024}$"
ADDRESS_RE, HOST_RE = re.compile(ADDRESS_PATTERN), re.compile(HOST_PATTERN)
MAX_URL = 2000
MAX_RECIPIENTS = 50


@dataclass(frozen=True, slots=True)
class SinkSpec:
    kind: str
    url: str  # shown: a signed webhook's URL; "" for the others
    secret: str  # never shown: SMTP password, chat URL ("" for a webhook: generated)
    config: dict[str, Any] = field(default_factory=dict)


def _url(name: str, value: str | None) -> str:
    """The pattern is the whole rule (the schema states it); a URL that still cannot be
    sent fails its deliveries for good ("invalid URL", dead letter)."""
    if not value or len(value) > MAX_URL or not URL_RE.match(value):
        raise ValueError(f"{name}: an absolute http(s) URL of at most {MAX_URL} characters")
    return value


def host_of(url: str) -> str:
    """What a listing shows of a secret URL: its host part."""
    netloc = url.split("://", 1)[1]
    for sep in "/?#":
        netloc = netloc.split(sep, 1)[0]
    return netloc.rsplit("@", 1)[-1]


def sink_spec(kind: str, *, url: str | None = None, host: str | None = None,
              port: int | None = None, security: str = "starttls",
              username: str | None = None, password: str | None = None,
              sender: str | None = None, to: Sequence[str] = (),
              base_url: str | None = None) -> SinkSpec:
    """The receiver described by these fields, or ``ValueError("field: reason")``."""
    if kind not in KINDS:
        raise ValueError(f"kind: one of {', '.join(KINDS)}")
    extra: dict[str, Any] = {}
    if base_url is not None:
        if kind == "webhook":
            raise ValueError("base_url: only for email, slack and teams")
        extra["base_url"] = _url("base_url", base_url).rstrip("/")
    if kind == "webhook":
        return SinkSpec("webhook", _url("url", url), "", {})
    if kind in ("slack", "teams"):
        secret = _url("url", url)
        return SinkSpec(kind, "", secret, {"host": host_of(secret), **extra})
    if url is not None:
        raise ValueError("url: not for email (give host, port, from, to)")
    if not host or not HOST_RE.match(host):
        raise ValueError("host: the SMTP server's host name or address")
    if security not in SECURITY:
        raise ValueError(f"security: one of {', '.join(SECURITY)}")
    port = DEFAULT_PORTS[security] if port is None else port
    if not 1 <= port <= 65535:
        raise ValueError("port: 1 to 65535")
    if (username is None) != (password is None):
        raise ValueError("username: give both username and password, or neither")
    if username is not None and not re.match(USERNAME_PATTERN, username):
        raise ValueError("username: 1 to 256 characters, one line")
    if password is not None and not re.match(PASSWORD_PATTERN, password):
        # smtplib sends AUTH credentials as ASCII: anything else could never log in
        raise ValueError("password: 1 to 1024 printable ASCII characters")
    if not sender or len(sender) > 254 or not ADDRESS_RE.match(sender):
        raise ValueError("from: one e-mail address (name@domain)")
    rcpts = list(to)
    if not rcpts or len(rcpts) > MAX_RECIPIENTS:
        raise ValueError(f"to: 1 to {MAX_RECIPIENTS} e-mail addresses")
    for r in rcpts:
        if len(r) > 254 or not ADDRESS_RE.match(r):
            raise ValueError(f"to: {r!r} is not an e-mail address (name@domain)")
    return SinkSpec("email", "", password or "", {
        "host": host, "port": port, "security": security, "username": username,
        "from": sender, "to": rcpts, **extra})


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """What listings show of a receiver: never its secret. A ``webhook`` keeps the four
    fields it always had (``id, controller, url, created_at``) plus ``kind``."""
    out: dict[str, Any] = {"id": row["id"], "controller": row["controller"],
                           "kind": row["kind"], "created_at": row["created_at"]}
    if row["kind"] == "webhook":
        out["url"] = row["url"]
    else:
        out.update(row["config"])
    return out


def make_sink(hook: dict[str, Any],
              webhook_factory: Callable[[str, str], AlertSink] | None = None) -> AlertSink:
    """The sink that sends to one stored receiver (``Outbox.webhook`` row, with its
    secret)."""
    from projections.alerts.sinks.chat import SlackSink, TeamsSink
    from projections.alerts.sinks.email import EmailSink
    from projections.alerts.sinks.webhook import WebhookSink

    kind, cfg = hook["kind"], hook["config"]
    if kind == "webhook":
        return (webhook_factory or WebhookSink)(hook["url"], hook["secret"])
    if kind == "email":
        return EmailSink(cfg["host"], cfg["port"], cfg["security"], cfg["from"], cfg["to"],
                         cfg.get("username"), hook["secret"] or None, cfg.get("base_url"))
    if kind == "slack":
        return SlackSink(hook["secret"], cfg.get("base_url"))
    if kind == "teams":
        return TeamsSink(hook["secret"], cfg.get("base_url"))
    raise ValueError(f"unknown receiver kind {kind!r}")
