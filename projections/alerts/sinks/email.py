"""E-mail delivery over SMTP (stdlib ``smtplib``): a plain-text message a DPO reads
without a developer (``text.readable``), to a list of recipients.

``security``: ``starttls`` (submission, port 587: upgrade the connection, certificate
verified), ``ssl`` (implicit TLS, port 465) or ``none`` (a relay on a trusted network).
Login only when a username is configured. The password never appears in an error: the
outbox's ``last_error`` and the log get the SMTP code and reply, nothing else.

The ``Message-ID`` is derived from the alert id, so a re-send after a crash (the server
accepted, the outbox row was not yet updated) is recognisably the same message; mail
clients and many servers fold such duplicates.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from ledger.clock import parse_rfc3339
from projections.alerts.sinks import DeliveryError
from projections.alerts.sinks.text import readable
from projections.alerts.sinks.webhook import ID_HEADER

TIMEOUT_S = 10.0
log = logging.getLogger(__name__)


def message(alert: dict[str, Any], sender: str, to: list[str],
            base_url: str | None = None) -> EmailMessage:
    """The e-mail of one alert: the same bytes on every attempt (``Date`` is the
    emission time, ``Message-ID`` the alert id)."""
    r = readable(alert, base_url)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = r.subject
    msg["Date"] = format_datetime(parse_rfc3339(alert.get("emitted_at") or alert["due_at"]))
    msg["Message-ID"] = f"<{alert['id']}@alerts.auditledger>"
    msg[ID_HEADER] = alert["id"]
    msg.set_content(r.text())
    return msg


class EmailSink:
    def __init__(self, host: str, port: int, security: str, sender: str, to: list[str],
                 username: str | None = None, password: str | None = None,
                 base_url: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.host, self.port, self.security = host, port, security
        self.sender, self.to = sender, list(to)
        self.username, self._password = username, password
        self.base_url, self.timeout_s = base_url, timeout_s

    def __repr__(self) -> str:  # never the password
        return f"EmailSink({self.host}:{self.port}, {self.security}, to={self.to})"

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=ssl.create_default_context())
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        if self.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def deliver(self, alert: dict[str, Any], body: bytes) -> None:
        msg = message(alert, self.sender, self.to, self.base_url)
        try:
            with self._connect() as smtp:
                if self.username is not None:
                    smtp.login(self.username, self._password or "")
                refused = smtp.send_message(msg, self.sender, self.to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [c for c, _ in exc.recipients.values()]
            raise DeliveryError(f"SMTP recipients refused: {sorted(set(codes))}",
                                permanent=all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error.decode(errors="replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {exc.smtp_code} {reply[:200]}") from None
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from None
        if refused:  # the others took it: delivered (a retry would repeat it to them)
            log.warning("alert %s: SMTP refused %s", alert["id"], sorted(refused))

    def close(self) -> None:
        pass
