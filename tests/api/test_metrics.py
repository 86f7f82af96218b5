"""``/metrics`` parses as the Prometheus text format and keeps every metric name the page
has carried since it was hand-written (dashboards and alert rules name them)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Api

# name on the page -> type
NAMES = {
    "auditledger_events_total": "counter",
    "auditledger_rejections_total": "counter",
    "auditledger_ingest_requests_total": "counter",
    "auditledger_ingest_rate": "gauge",
    "auditledger_log_size": "gauge",
    "auditledger_projection_lag": "gauge",
    "auditledger_alert_queue_length": "gauge",
    "auditledger_http_requests_total": "counter",
    "auditledger_uptime_seconds": "gauge",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_page_parses_with_every_name_and_type(api: Api) -> None:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = r.text.splitlines()
    for name, kind in NAMES.items():
        assert f"# TYPE {name} {kind}" in lines, name
    assert not [ln for ln in lines if "_created" in ln]  # no second series per counter


def test_counters_follow_ingest_and_requests(api: Api) -> None:
    before = samples(api.client.get("/metrics").text)
    bad = api.event()
    bad["sig"] = "A" * 86
    good = api.event()
    api.post([good, bad])
    api.post([good])  # a duplicate
    after = samples(api.client.get("/metrics").text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("auditledger_events_total", status="accepted") == 1
    assert grew("auditledger_events_total", status="duplicate") == 1
    assert grew("auditledger_events_total", status="rejected") == 1
    assert grew("auditledger_rejections_total", code="bad_signature") == 1
    assert grew("auditledger_ingest_requests_total") == 2
    assert grew("auditledger_http_requests_total", route="/v1/events", method="POST",
                status="200") == 2
    assert after[("auditledger_ingest_rate", ())] > 0
    assert grew("auditledger_log_size", controller="all") == 1  # one event appended
    assert after[("auditledger_uptime_seconds", ())] > 0
