"""Webhook delivery with the injectable clock: signatures, retries with backoff while the
receiver is down, exactly one accepted delivery per id after it recovers, dead letters."""

from __future__ import annotations

from datetime import timedelta

from ledger.clock import FixedClock
from projections.alerts.delivery import Deliverer, RetryPolicy
from projections.alerts.outbox import Outbox
from projections.alerts.sinks import alert_body
from projections.alerts.sinks.webhook import sign, verify_signature
from projections.alerts.thresholds import Planned, alert_id
from tests.alerts.alerting import CID, NOW, Receiver


def plan(outbox: Outbox, n: int, controller: str = CID) -> list[str]:
    ps = [Planned(alert_id(controller, f"breach:b{i}", "48h@x"), controller, "breach",
                  f"b{i}", "48h", NOW, {"message": f"m{i}"}) for i in range(n)]
    outbox.plan(controller, ps, NOW)
    return [p.id for p in ps]


def test_policy_backoff_grows_with_jitter_and_cap():
    p = RetryPolicy(base_s=1, factor=2, max_delay_s=10, jitter=0.5)
    for n, full in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10), (500, 10)]:
        ds = [p.delay(n) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in ds), (n, min(ds), max(ds))
        assert max(ds) - min(ds) > full / 4  # random over the jitter half, not constant
    assert RetryPolicy(base_s=3, factor=3, jitter=0).delay(3) == 27  # no jitter: exact


def test_signature_round_trip():
    body = b'{"id":"x"}'
    sig = sign("whsec_k", "1700000000", body)
    assert verify_signature("whsec_k", "1700000000", body, sig, now=1700000010)
    assert not verify_signature("whsec_k", "1700000000", body + b" ", sig, now=1700000010)
    assert not verify_signature("other", "1700000000", body, sig, now=1700000010)
    assert not verify_signature("whsec_k", "1700000000", body, sig, now=1700009999)


def test_receiver_down_then_up_gets_each_alert_once(outbox: Outbox, clock: FixedClock,
                                                    receiver: Receiver):
    hook = outbox.add_webhook(CID, receiver.url, NOW)
    receiver.secret = hook["secret"]
    ids = plan(outbox, 5)
    emitted = outbox.emit_due(NOW)
    assert [a["seq"] for a in emitted] == [1, 2, 3, 4, 5]
    receiver.stop()  # connection refused
    d = Deliverer(outbox, clock, RetryPolicy(base_s=2, max_delay_s=60, max_attempts=20))
    for _ in range(4):
        assert d.run_once() == 0
        clock.advance(timedelta(seconds=61))
    assert outbox.queue_length() == 5
    (a,) = outbox.alerts("undelivered", after_seq=4)
    assert a["deliveries"][0]["attempts"] == 4
    assert a["deliveries"][0]["last_error"].startswith("ConnectError")
    receiver.start()  # same port
    assert d.run_once() == 5
    assert d.run_once() == 0
    assert sorted(receiver.ids()) == sorted(ids)  # each once, all signed
    assert receiver.bad_signatures == 0
    assert outbox.queue_length() == 0
    # the body is the same bytes on every attempt
    got = receiver.requests[0]["doc"]
    assert alert_body(outbox.get(got["id"])) == alert_body(got)


def test_dead_letter_and_redeliver(outbox: Outbox, clock: FixedClock, receiver: Receiver):
    hook = outbox.add_webhook(CID, receiver.url, NOW)
    receiver.secret = hook["secret"]
    (aid,) = plan(outbox, 1)
    outbox.emit_due(NOW)
    receiver.up = False  # 503
    d = Deliverer(outbox, clock, RetryPolicy(base_s=1, max_attempts=3))
    for _ in range(5):
        d.run_once()
        clock.advance(timedelta(seconds=10))
    (dead,) = outbox.alerts("dead")
    assert dead["id"] == aid and dead["deliveries"][0]["attempts"] == 3
    assert dead["deliveries"][0]["last_error"] == "HTTP 503"
    assert outbox.queue_length() == 0
    receiver.up = True
    assert outbox.redeliver(aid, clock.now()) == 1
    assert d.run_once() == 1
    assert outbox.alerts("dead") == []
    assert receiver.ids() == [aid]


def test_deleted_webhook_cancels_its_pending_deliveries(outbox: Outbox, clock: FixedClock):
    hook = outbox.add_webhook(CID, "http://127.0.0.1:9/nowhere", NOW)
    assert [h["id"] for h in outbox.webhooks(CID)] == [hook["id"]]
    assert "secret" not in outbox.webhooks(CID)[0]
    plan(outbox, 2)
    outbox.emit_due(NOW)
    assert outbox.queue_length() == 2
    assert outbox.delete_webhook(CID, hook["id"], NOW)
    assert not outbox.delete_webhook(CID, hook["id"], NOW)
    assert outbox.queue_length() == 0 and outbox.webhooks(CID) == []
    # alerts emitted after deletion get no delivery to it
    plan(outbox, 3)
    (new,) = outbox.emit_due(NOW)
    assert outbox.alerts("emitted", after_seq=2)[0]["deliveries"] == []
    assert new["seq"] == 3
