"""One contract, every sink (STYLE.md: one seam, one shared suite): the signed webhook,
e-mail over SMTP, Slack and Teams incoming webhooks, each against a real local receiver.

Through the same outbox and ``Deliverer``: delivered once each, retried after a failure
answer and after connection refused, dead-lettered after ``max_attempts``, not sent
again after a restart, and no secret in ``last_error``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.clock import FixedClock
from projections.alerts.delivery import Deliverer, RetryPolicy
from projections.alerts.outbox import Outbox
from projections.alerts.sinks.config import SinkSpec, sink_spec
from projections.alerts.thresholds import Planned, alert_id
from tests.alerts.alerting import CID, NOW, Receiver
from tests.alerts.receivers import JsonReceiver, SmtpReceiver

PASSWORD = "s3cret-smtp-p4ssword"


def plan(outbox: Outbox, n: int, tag: str = "b") -> list[str]:
    ps = [Planned(alert_id(CID, f"breach:{tag}{i}", "48h@x"), CID, "breach", f"{tag}{i}",
                  "48h", NOW, {"message": f"breach {tag}{i}: 48h since awareness",
                               "deadline": "authority_due",
                               "deadline_at": "2026-12-02T09:00:00.000Z",
                               "timezone": "Europe/Oslo"}) for i in range(n)]
    outbox.plan(CID, ps, NOW)
    return [p.id for p in ps]


class SinkContract:
    """Subclasses give ``rx`` (a started receiver with ``fail``, ``stop``, ``start``,
    ``ids``) and ``spec(rx)`` (how the receiver is registered)."""

    kind = ""

    def spec(self, rx: Any) -> SinkSpec:
        raise NotImplementedError

    def secrets(self, rx: Any) -> list[str]:
        """Strings that must never appear in a listing or an error."""
        return []

    def register(self, outbox: Outbox, rx: Any) -> str:
        hook = outbox.add_sink(CID, self.spec(rx), NOW)
        if self.kind == "webhook":
            rx.secret = hook["secret"]
        return f"{self.kind}:{hook['id']}"

    def test_delivers_each_alert_once(self, outbox: Outbox, clock: FixedClock, rx: Any):
        sink = self.register(outbox, rx)
        ids = plan(outbox, 3)
        assert [a["seq"] for a in outbox.emit_due(NOW)] == [1, 2, 3]
        d = Deliverer(outbox, clock, RetryPolicy())
        assert d.run_once() == 3
        assert d.run_once() == 0
        assert sorted(rx.ids()) == sorted(ids)
        assert outbox.queue_length() == 0
        (a, *_) = outbox.alerts("emitted")
        assert [(x["sink"], x["state"]) for x in a["deliveries"]] == [(sink, "delivered")]
        listed = repr(outbox.webhooks(CID))
        assert all(s not in listed for s in self.secrets(rx))
        assert outbox.webhooks(CID)[0]["kind"] == self.kind

    def test_retries_after_failure_and_connection_refused(
            self, outbox: Outbox, clock: FixedClock, rx: Any,
            caplog: pytest.LogCaptureFixture):
        caplog.set_level(logging.DEBUG)  # everything any library logs on the way
        self.register(outbox, rx)
        (aid,) = plan(outbox, 1)
        outbox.emit_due(NOW)
        d = Deliverer(outbox, clock, RetryPolicy(base_s=1, max_delay_s=10, max_attempts=10))
        rx.fail = True  # HTTP 500 / SMTP 451
        assert d.run_once() == 0
        clock.advance(timedelta(seconds=11))
        rx.fail = False
        rx.stop()  # connection refused
        assert d.run_once() == 0
        (a,) = outbox.alerts("undelivered")
        (dl,) = a["deliveries"]
        assert dl["attempts"] == 2 and dl["state"] == "pending"
        assert dl["next_attempt_at"] > clock.now().isoformat()[:19]
        assert all(s not in dl["last_error"] for s in self.secrets(rx))
        assert d.run_once() == 0  # not due yet: the backoff is kept
        rx.start()  # same port
        clock.advance(timedelta(seconds=11))
        assert d.run_once() == 1
        assert rx.ids() == [aid]
        assert outbox.alerts("undelivered") == []
        assert caplog.records  # httpx / aiosmtpd did log: and no secret in it
        assert all(s not in caplog.text for s in self.secrets(rx)), caplog.text[-2000:]

    def test_dead_letter_after_max_attempts(self, outbox: Outbox, clock: FixedClock, rx: Any):
        self.register(outbox, rx)
        (aid,) = plan(outbox, 1)
        outbox.emit_due(NOW)
        rx.fail = True
        d = Deliverer(outbox, clock, RetryPolicy(base_s=1, max_attempts=3))
        for _ in range(5):
            d.run_once()
            clock.advance(timedelta(seconds=10))
        (dead,) = outbox.alerts("dead")
        assert dead["id"] == aid and dead["deliveries"][0]["attempts"] == 3
        assert outbox.queue_length() == 0 and rx.ids() == []
        rx.fail = False
        assert outbox.redeliver(aid, clock.now()) == 1
        assert d.run_once() == 1 and rx.ids() == [aid]

    def test_no_double_send_after_restart(self, tmp_path: Path, clock: FixedClock, rx: Any):
        path = tmp_path / "restart.sqlite"
        ob = Outbox(path)
        self.register(ob, rx)
        ids = plan(ob, 2)
        ob.emit_due(NOW)
        Deliverer(ob, clock, RetryPolicy()).run_once()
        ob.close()  # a new process: the same file, the same plan again
        ob = Outbox(path)
        plan(ob, 2)
        clock.advance(timedelta(minutes=5))
        assert ob.emit_due(clock.now()) == []
        assert Deliverer(ob, clock, RetryPolicy()).run_once() == 0
        assert sorted(rx.ids()) == sorted(ids)
        ob.close()


class FailingReceiver(Receiver):
    """The webhook receiver with the suite's ``fail`` switch (503 while set)."""

    @property
    def fail(self) -> bool:
        return not self.up

    @fail.setter
    def fail(self, value: bool) -> None:
        self.up = not value


class TestWebhookSink(SinkContract):
    kind = "webhook"

    @pytest.fixture
    def rx(self) -> Iterator[FailingReceiver]:
        r = FailingReceiver().start()
        yield r  # type: ignore[misc]
        r.stop()

    def spec(self, rx: Receiver) -> SinkSpec:
        return sink_spec("webhook", url=rx.url)

    def secrets(self, rx: Receiver) -> list[str]:
        return [rx.secret] if rx.secret else []


class TestEmailSink(SinkContract):
    kind = "email"

    @pytest.fixture
    def rx(self) -> Iterator[SmtpReceiver]:
        r = SmtpReceiver(login=("dpo", PASSWORD)).start()
        yield r
        r.stop()

    def spec(self, rx: SmtpReceiver) -> SinkSpec:
        return sink_spec("email", host="127.0.0.1", port=rx.port, security="none",
                         username="dpo", password=PASSWORD, sender="alerts@example.no",
                         to=["dpo@example.no", "legal@example.no"])

    def secrets(self, rx: SmtpReceiver) -> list[str]:
        return [PASSWORD]


class TestSlackSink(SinkContract):
    kind = "slack"

    @pytest.fixture
    def rx(self) -> Iterator[JsonReceiver]:
        r = JsonReceiver(200).start()
        yield r
        r.stop()

    def spec(self, rx: JsonReceiver) -> SinkSpec:
        return sink_spec("slack", url=rx.url())

    def secrets(self, rx: JsonReceiver) -> list[str]:
        return [rx.url(), "XXXXsecretXXXX"]


class TestTeamsSink(TestSlackSink):
    kind = "teams"

    @pytest.fixture
    def rx(self) -> Iterator[JsonReceiver]:
        r = JsonReceiver(202).start()
        yield r
        r.stop()

    def spec(self, rx: JsonReceiver) -> SinkSpec:
        return sink_spec("teams", url=rx.url("/workflows/abc/triggers/manual/paths/invoke"
                                             "?sig=XXXXsecretXXXX"))

    def secrets(self, rx: JsonReceiver) -> list[str]:
        return ["XXXXsecretXXXX"]
