"""Chat delivery through incoming webhooks: Slack and Microsoft Teams.

- **Slack** incoming webhook: ``{"text": <fallback>, "blocks": [...]}`` (Block Kit:
  header, the message, a fields section, a button to the case when a base URL is set, the
  alert id as context). Slack answers ``200 ok``.
- **Teams**: the Workflows app's "When a Teams webhook request is received" trigger
  (the successor of the retired Office 365 connectors, which accepted MessageCard).
  Workflows accept Adaptive Cards only, as a message with one attachment of
  ``application/vnd.microsoft.card.adaptive`` (card version 1.4); they answer ``202``.

The URL is the credential: it is kept out of every error message (``last_error`` is
listed by the API), which names only the host, and out of httpx's own request log.

2xx = delivered; anything else is retried by the ``Deliverer``, a 410 Gone (Slack: the
channel was archived) is dead at once — the same rules as the signed webhook.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import httpx
import orjson

from projections.alerts.sinks import DeliveryError
from projections.alerts.sinks.config import host_of
from projections.alerts.sinks.text import Readable, readable
from projections.alerts.sinks.webhook import ID_HEADER, TIMEOUT_S


class _RedactUrls(logging.Filter):
    """httpx logs every request's full URL at INFO (``HTTP Request: POST <url> …``); for a
    chat receiver that URL is the credential. Replaces it with its host in such records,
    whatever the log level an operator sets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str] = {}  # str(httpx.URL) -> what to print instead

    def add(self, url: str) -> None:
        # a URL httpx cannot parse is never requested, so never logged
        with contextlib.suppress(Exception):
            self.urls[str(httpx.URL(url))] = f"<{host_of(url)} incoming-webhook URL>"

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls and isinstance(record.args, tuple):
            record.args = tuple(self.urls.get(str(a), a) if isinstance(a, httpx.URL) else a
                                for a in record.args)
        return True


_REDACT = _RedactUrls()
logging.getLogger("httpx").addFilter(_REDACT)


def _mrkdwn(s: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
    r = readable(alert, base_url)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": r.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(r.headline)[:3000]}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{_mrkdwn(k)}*\n{_mrkdwn(v)}"[:2000]}
            for k, v in r.facts if k != "Alert id"][:10]},
    ]
    if r.link:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open the case"},
            "url": r.link}]})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"alert id {alert['id']}"}]})
    return {"text": _fallback(r), "blocks": blocks}


def _fallback(r: Readable) -> str:
    """The notification text (and what clients without blocks show)."""
    return _mrkdwn(f"{r.subject}\n{r.headline}")[:3000]


def teams_payload(alert: dict[str, Any], base_url: str | None = None) -> dict[str, Any]:
    r = readable(alert, base_url)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": r.subject, "weight": "Bolder", "size": "Medium",
             "wrap": True},
            {"type": "TextBlock", "text": r.headline, "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in r.facts]},
        ],
    }
    if r.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the case",
                            "url": r.link}]
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card}]}


class _ChatSink:
    payload = staticmethod(slack_payload)
    name = "chat"

    def __init__(self, url: str, base_url: str | None = None,
                 client: httpx.Client | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self._url, self.base_url = url, base_url
        self.host = host_of(url)
        _REDACT.add(url)
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._own = client is None

    def __repr__(self) -> str:  # never the URL
        return f"{type(self).__name__}({self.host})"

    def deliver(self, alert: dict[str, Any], body: bytes) -> None:
        data = orjson.dumps(self.payload(alert, self.base_url))
        try:
            req = self._client.build_request("POST", self._url, content=data, headers={
                "Content-Type": "application/json", ID_HEADER: alert["id"],
                "User-Agent": "auditledger-alerts/1"})
        except Exception:  # a URL httpx cannot send (bad IDNA host, …): no retry can help
            raise DeliveryError(f"{self.name}: invalid URL", permanent=True) from None
        try:
            r = self._client.send(req)
        except httpx.HTTPError as exc:
            # httpx messages may quote the URL; name the error type and the host only
            raise DeliveryError(f"{self.name} {self.host}: {type(exc).__name__}") from None
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"{self.name} {self.host}: HTTP {r.status_code}",
                                permanent=r.status_code == 410)

    def close(self) -> None:
        if self._own:
            self._client.close()


class SlackSink(_ChatSink):
    payload = staticmethod(slack_payload)
    name = "slack"


class TeamsSink(_ChatSink):
    payload = staticmethod(teams_payload)
    name = "teams"
