"""``GET /v1/alerts/stream`` over a real uvicorn server: the bytes of each frame, live
delivery to an open stream, a dropped connection resumed with ``Last-Event-ID`` (nothing
missed, nothing twice), keepalive comments, and a server that shuts down while a stream
is open (``serve`` must not wait on the stream)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.routes import alerts as alert_routes
from tests.alerts.test_api_alerts import breach_now_past_48h, schedule, sse_events
from tests.api.conftest import Api, make_api
from tests.conftest import CLI, CONTROLLER, cli_json, free_port, wait_until_healthy


class Served:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            api.client.app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_graceful_shutdown=5))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def headers(self, who: str = "auditor_a", **extra: str) -> dict[str, str]:
        return {**self.api.auth(who), **extra}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    api, store = make_api(tmp_path)
    s = Served(api).start()
    yield s
    if s.thread.is_alive():
        s.stop()
    store.close()
    api.world.ledger.close()


def alert_now(s: Served, bid: str) -> None:
    """One breach whose 48 h alert is due now, then a scheduler tick that emits it."""
    breach_now_past_48h(s.api, CONTROLLER, bid)
    schedule(s.api)


class Frames:
    """Reads an open stream frame by frame (frames end with a blank line), raw."""

    def __init__(self, response: httpx.Response) -> None:
        self.chunks = response.iter_text()
        self.buf = ""

    def next(self, n: int) -> list[str]:
        got: list[str] = []
        while len(got) < n:
            if "\n\n" in self.buf:
                frame, self.buf = self.buf.split("\n\n", 1)
                got.append(frame)
                continue
            chunk = next(self.chunks, None)
            assert chunk is not None, f"stream ended after {got}"
            self.buf += chunk
        return got

    def next_breach(self) -> tuple[str, dict]:
        """The next breach alert (other kinds, e.g. consent findings, are skipped)."""
        while True:
            (frame,) = self.next(1)
            evs = sse_events(frame + "\n\n")
            if evs and evs[0]["data"]["kind"] == "breach":
                return frame, evs[0]


def test_frames_live_alert_drop_and_resume(served: Served) -> None:
    alert_now(served, "b1")
    with httpx.Client(base_url=served.url, timeout=10) as http, http.stream(
            "GET", "/v1/alerts/stream", params={"after": 0},
            headers=served.headers()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        frames = Frames(r)
        assert frames.next(1) == ["retry: 1000"]
        first, ev = frames.next_breach()
        lines = first.split("\n")
        assert lines[0] == f"id: {ev['data']['seq']}" and lines[1] == "event: alert"
        assert lines[2].startswith("data: {") and len(lines) == 3  # LF only, one data line
        assert ev["id"] == str(ev["data"]["seq"]) and ev["data"]["case"] == "b1"
        # an alert emitted while the stream is open arrives on it
        t = time.monotonic()
        alert_now(served, "b2")
        _, live_ev = frames.next_breach()
        assert time.monotonic() - t < 2.0
        assert live_ev["data"]["case"] == "b2"
    # the connection dropped after b2; b3 and b4 happen while the client is away
    alert_now(served, "b3")
    alert_now(served, "b4")
    resumed = httpx.get(f"{served.url}/v1/alerts/stream", params={"idle_timeout": 0.5},
                        headers=served.headers(**{"Last-Event-ID": live_ev["id"]}),
                        timeout=10)
    cases = [e["data"]["case"] for e in sse_events(resumed.text)
             if e["data"]["kind"] == "breach"]
    assert cases == ["b3", "b4"]  # nothing missed, nothing twice


def test_keepalive_comment_while_quiet(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alert_routes, "KEEPALIVE_S", 0.3)
    r = httpx.get(f"{served.url}/v1/alerts/stream", params={"idle_timeout": 1.0},
                  headers=served.headers(), timeout=10)
    assert r.text.startswith("retry: 1000\n\n")
    assert r.text.count(": keepalive\n\n") >= 2, r.text


def test_serve_stops_on_sigterm_with_an_open_stream(tmp_path: Path) -> None:
    """``auditledger serve`` gets SIGTERM (systemd, Kubernetes) while a client listens:
    the stream is closed and the process exits, instead of waiting on the stream."""
    data = tmp_path / "data"
    admin = cli_json("init", "--data", str(data))["admin_api_key"]
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--data", str(data), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, timeout=30)
        opened = threading.Event()
        ended: list[str] = []

        def listen() -> None:
            try:
                with httpx.stream("GET", f"{url}/v1/alerts/stream", timeout=60,
                                  headers={"Authorization": f"Bearer {admin}"}) as r:
                    for _ in r.iter_text():
                        opened.set()
                ended.append("closed")
            except httpx.HTTPError as exc:
                ended.append(type(exc).__name__)

        client = threading.Thread(target=listen, daemon=True)
        client.start()
        assert opened.wait(10), "the stream did not open"
        t = time.monotonic()
        proc.terminate()
        proc.wait(timeout=30)
        assert time.monotonic() - t < 5
        client.join(timeout=5)
        assert ended == ["closed"]  # ended cleanly by the server, not cut
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_alerts_after_a_clock_advance_keep_their_order(served: Served) -> None:
    alert_now(served, "b1")
    served.api.world.clock.advance(timedelta(hours=12))
    schedule(served.api)  # the 60 h alert of b1
    r = httpx.get(f"{served.url}/v1/alerts/stream", params={"after": 0, "idle_timeout": 0.5},
                  headers=served.headers(), timeout=10)
    evs = [e for e in sse_events(r.text) if e["data"]["kind"] == "breach"]
    assert [e["data"]["threshold"] for e in evs] == ["48h", "60h"]
    assert [int(e["id"]) for e in evs] == sorted(int(e["id"]) for e in evs)


@pytest.mark.parametrize("value", [b"9223372036854775808", b"99999999999999999999",
                                   "\u00b2".encode("latin-1"), b"-1", b"x"])
def test_a_last_event_id_that_is_no_seq_is_ignored(served: Served, value: bytes) -> None:
    """Past the largest 64-bit seq, a superscript digit (``str.isdigit`` says yes, ``int``
    says no), or not a number: as if absent (the stream starts after the newest alert);
    these were 500s."""
    alert_now(served, "b1")
    r = httpx.get(f"{served.url}/v1/alerts/stream", params={"idle_timeout": 0.3},
                  headers={**served.headers(), "Last-Event-ID": value}, timeout=10)
    assert r.status_code == 200
    assert sse_events(r.text) == []  # b1 is older than the start: not replayed
