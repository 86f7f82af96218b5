"""What a person receives: the e-mail (through a real aiosmtpd server: headers and body),
the Slack and Teams payloads (through a real local HTTP server: the JSON's shape), and
the wording rules (due in the controller's zone and UTC, time left or overdue, link)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.clock import FixedClock, format_rfc3339
from projections.alerts.delivery import Deliverer, RetryPolicy
from projections.alerts.outbox import Outbox
from projections.alerts.sinks import DeliveryError
from projections.alerts.sinks.config import sink_spec
from projections.alerts.sinks.email import EmailSink
from projections.alerts.sinks.text import readable, span
from projections.alerts.thresholds import Planned, alert_id
from tests.alerts.alerting import CID, NOW
from tests.alerts.receivers import JsonReceiver, SmtpReceiver, self_signed

DUE = NOW + timedelta(days=1, hours=3)  # 2026-12-02T12:00Z = 13:00 in Oslo
BASE = "https://ledger.example.no"


def emit_request_alert(outbox: Outbox, threshold: str = "due-1d",
                       at: object = NOW) -> dict:
    p = Planned(alert_id(CID, "rights_request:r1", f"{threshold}@2026-12-02"), CID,
                "rights_request", "r1", threshold, NOW,
                {"message": "rights request r1: due 2026-12-02 (1 day left)",
                 "deadline": "binding_due", "deadline_date": "2026-12-02",
                 "deadline_at": format_rfc3339(DUE), "right": "access",
                 "subject": "psn:7f3a", "timezone": "Europe/Oslo"})
    outbox.plan(CID, [p], NOW)
    (a,) = outbox.emit_due(at)  # type: ignore[arg-type]
    return a


@pytest.mark.parametrize(("delta", "words"), [
    (timedelta(minutes=1), "1 minute"), (timedelta(minutes=59), "59 minutes"),
    (timedelta(hours=1), "1 hour"), (timedelta(hours=5, minutes=10), "5 hours 10 minutes"),
    (timedelta(days=1), "1 day"), (timedelta(days=3, hours=4, minutes=9), "3 days 4 hours"),
    (-timedelta(hours=2), "2 hours"),
])
def test_span(delta: timedelta, words: str):
    assert span(delta) == words


def test_readable_says_local_and_utc_time_left_or_overdue_and_links(outbox: Outbox):
    a = emit_request_alert(outbox)
    r = readable(a, BASE)
    facts = dict(r.facts)
    assert facts["Due"] == "2026-12-02 13:00 Europe/Oslo (2026-12-02 12:00 UTC)"
    assert facts["Time left"] == "1 day 3 hours" and "Overdue by" not in facts
    assert facts["Subject"] == "psn:7f3a" and facts["Alert id"] == a["id"]
    assert r.link == f"{BASE}/c/{CID}/rights-requests#request-r1"
    assert r.subject == f"[auditledger] Rights request r1: 1 day 3 hours left - {CID}"
    late = readable({**a, "emitted_at": format_rfc3339(DUE + timedelta(hours=7))})
    assert dict(late.facts)["Overdue by"] == "7 hours" and "left" not in late.subject
    assert late.link is None and "Open:" not in late.text()


def test_email_received_by_a_real_smtp_server(outbox: Outbox, clock: FixedClock):
    rx = SmtpReceiver(login=("dpo", "pw-1")).start()
    try:
        outbox.add_sink(CID, sink_spec(
            "email", host="127.0.0.1", port=rx.port, security="none", username="dpo",
            password="pw-1", sender="alerts@example.no",
            to=["dpo@example.no", "legal@example.no"], base_url=BASE + "/"), NOW)
        a = emit_request_alert(outbox)
        assert Deliverer(outbox, clock, RetryPolicy()).run_once() == 1
        (msg,) = rx.messages
        assert rx.envelopes == [("alerts@example.no", ["dpo@example.no", "legal@example.no"])]
        assert msg["From"] == "alerts@example.no"
        assert msg["To"] == "dpo@example.no, legal@example.no"
        assert msg["Subject"] == f"[auditledger] Rights request r1: 1 day 3 hours left - {CID}"
        assert msg["Message-ID"] == f"<{a['id']}@alerts.auditledger>"
        assert msg["X-Auditledger-Alert-Id"] == a["id"]
        assert msg.get_content_type() == "text/plain"
        body = msg.get_content().replace("\r\n", "\n")  # SMTP lines end CRLF
        assert body.startswith("rights request r1: due 2026-12-02 (1 day left)\n")
        for line in ("Controller: NO-921119224", "Case:       rights request r1",
                     "Due:        2026-12-02 13:00 Europe/Oslo (2026-12-02 12:00 UTC)",
                     "Due date:   2026-12-02 (end of day, Europe/Oslo)",
                     "Time left:  1 day 3 hours", "Threshold:  due-1d",
                     f"Open: {BASE}/c/{CID}/rights-requests#request-r1"):
            assert line in body, (line, body)
        assert "pw-1" not in body
    finally:
        rx.stop()


def test_wrong_smtp_password_is_a_failed_attempt_that_does_not_show_it(outbox: Outbox):
    rx = SmtpReceiver(login=("dpo", "right")).start()
    try:
        a = emit_request_alert(outbox)
        sink = EmailSink("127.0.0.1", rx.port, "none", "a@example.no", ["b@example.no"],
                         "dpo", "wrong-pw-123")
        with pytest.raises(DeliveryError) as err:
            sink.deliver(a, b"")
        assert str(err.value).startswith("SMTP 535") and "wrong-pw-123" not in str(err.value)
        assert not err.value.permanent and rx.failed_logins == 1 and rx.messages == []
        assert "wrong-pw-123" not in repr(sink)
    finally:
        rx.stop()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_email_over_tls_verifies_the_server_certificate(
        security: str, outbox: Outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    ctx, crt = self_signed(tmp_path)
    rx = SmtpReceiver(login=("dpo", "pw-2"), tls=security, context=ctx).start()
    try:
        a = emit_request_alert(outbox)
        sink = EmailSink("127.0.0.1", rx.port, security, "a@example.no", ["b@example.no"],
                         "dpo", "pw-2", timeout_s=5)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-certs"))
        with pytest.raises(DeliveryError) as err:  # not trusted: nothing sent
            sink.deliver(a, b"")
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) and rx.messages == []
        monkeypatch.setenv("SSL_CERT_FILE", str(crt))  # the operator's trust store
        sink.deliver(a, b"")
        (msg,) = rx.messages
        assert msg["X-Auditledger-Alert-Id"] == a["id"] and rx.failed_logins == 0
    finally:
        rx.stop()


@pytest.fixture
def chat() -> Iterator[JsonReceiver]:
    rx = JsonReceiver(200).start()
    yield rx
    rx.stop()


def test_slack_payload_shape(outbox: Outbox, clock: FixedClock, chat: JsonReceiver):
    outbox.add_sink(CID, sink_spec("slack", url=chat.url(), base_url=BASE), NOW)
    a = emit_request_alert(outbox, at=DUE + timedelta(minutes=30))
    clock.set(DUE + timedelta(minutes=30))
    assert Deliverer(outbox, clock, RetryPolicy()).run_once() == 1
    (post,) = chat.posts
    assert post["path"] == "/services/T000/B000/XXXXsecretXXXX"
    assert post["headers"]["Content-Type"] == "application/json"
    doc = post["doc"]
    assert set(doc) == {"text", "blocks"}
    assert doc["text"].startswith("[auditledger] Rights request r1: overdue by 30 minutes")
    assert [b["type"] for b in doc["blocks"]] == ["header", "section", "section", "actions",
                                                  "context"]
    header, msg, fields, actions, context = doc["blocks"]
    assert header["text"]["type"] == "plain_text" and len(header["text"]["text"]) <= 150
    assert msg["text"] == {"type": "mrkdwn",
                           "text": "rights request r1: due 2026-12-02 (1 day left)"}
    labels = [f["text"].split("\n")[0] for f in fields["fields"]]
    assert "*Overdue by*" in labels and len(labels) <= 10
    assert actions["elements"][0]["url"] == f"{BASE}/c/{CID}/rights-requests#request-r1"
    assert context["elements"][0]["text"] == f"alert id {a['id']}"


def test_teams_adaptive_card_shape(outbox: Outbox, clock: FixedClock, chat: JsonReceiver):
    chat.status = 202  # what a Workflows webhook answers
    outbox.add_sink(CID, sink_spec("teams", url=chat.url("/workflows/1/invoke?sig=s")), NOW)
    a = emit_request_alert(outbox)
    assert Deliverer(outbox, clock, RetryPolicy()).run_once() == 1
    doc = chat.posts[0]["doc"]
    assert doc["type"] == "message"
    (att,) = doc["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    title, text, facts = card["body"]
    assert title["type"] == "TextBlock" and title["weight"] == "Bolder"
    assert text["text"] == a["message"]
    assert {f["title"]: f["value"] for f in facts["facts"]}["Alert id"] == a["id"]
    assert "actions" not in card  # no base URL configured: no link
