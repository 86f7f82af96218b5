"""``auditledger emit --url`` when the request cannot go through: one line ``error: ...``
on stderr and no traceback; exit 2 for what the caller must fix (bad API key, a key
without the producer role, a URL that is not the API, a malformed URL), exit 1 for what
may pass by itself (server errors, nothing listening), after the retries.

The good and refused cases run against a real ``auditledger serve``; the server error
against a real HTTP server on loopback that answers every request 503, as an overloaded
or broken deployment behind a proxy does (and one that answers 200 with a web page, as a
wrong URL may); "nothing listening" against a closed port.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ledger.envelope import pseudonym
from tests.conftest import CLI, CONTROLLER, free_port, wait_until_healthy
from tests.conftest import cli_json as cli
from tests.serving import make_data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("emit")
    world = make_data(tmp)
    data, key, producer = world["data"], world["key"], world["producer"]
    auditor = cli("apikey", "create", "--data", str(data), "--role", "auditor",
                  "--controller", CONTROLLER)["api_key"]
    events = tmp / "events.jsonl"
    events.write_bytes(b"".join(
        orjson.dumps({"type": "consent.given", "controller": CONTROLLER,
                      "subject": pseudonym(b"k" * 32, f"user{i}@example.org"),
                      "data": {"purposes": ["newsletter"], "method": "web_form",
                               "notice_version": "v1"}}) + b"\n" for i in range(3)))
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--data", str(data), "--port", str(port),
                             "--no-projections"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, proc, timeout=30)
    yield {"url": url, "producer": producer, "auditor": auditor, "key": key,
           "events": events}
    proc.terminate()
    proc.wait(timeout=10)


def emit(server: dict[str, Any], url: str, api_key: str, *extra: str
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "emit", "--url", url, "--api-key", api_key,
                           "--key", str(server["key"]), "--producer", "crm", *extra,
                           str(server["events"])],
                          capture_output=True, text=True, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_good_key_is_accepted(server: dict[str, Any]) -> None:
    proc = emit(server, server["url"], server["producer"])
    assert proc.returncode == 0, proc.stderr
    statuses = [orjson.loads(x)["status"] for x in proc.stdout.splitlines()]
    assert len(statuses) == 3 and set(statuses) <= {"accepted", "duplicate"}


@pytest.mark.parametrize("who, needle", [
    ("alk_not_a_key", "401"),
    ("auditor", "403"),  # a real key, of the wrong role
])
def test_refused_key_is_one_line_exit_2(server: dict[str, Any], who: str, needle: str) -> None:
    proc = emit(server, server["url"], server.get(who, who))
    line = one_error_line(proc)
    assert proc.returncode == 2
    assert needle in line and "refused the batch" in line, line
    assert proc.stdout == ""


def test_url_that_is_not_the_api_is_exit_2(server: dict[str, Any]) -> None:
    proc = emit(server, server["url"] + "/not-here", server["producer"])
    line = one_error_line(proc)
    assert proc.returncode == 2 and "404" in line, line


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://127.0.0.1/", "http://"])
def test_malformed_url_is_exit_2_without_retries(server: dict[str, Any], url: str) -> None:
    proc = emit(server, url, server["producer"])
    line = one_error_line(proc)
    assert proc.returncode == 2 and "bad URL" in line, line


def test_nothing_listening_is_one_line_exit_1(server: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = emit(server, url, server["producer"], "--retries", "2")
    line = one_error_line(proc)
    assert proc.returncode == 1
    assert f"cannot reach {url} after 3 attempts" in line and "ConnectError" in line, line


class _Fixed(http.server.BaseHTTPRequestHandler):
    """Answers every POST with ``status`` and ``body``, and counts them."""

    status = 503
    body = b'{"code":"unavailable","detail":"log unreachable"}'
    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass


def answering(server: dict[str, Any], status: int, body: bytes, *extra: str
              ) -> tuple[subprocess.CompletedProcess[str], int]:
    handler = type("Handler", (_Fixed,), {"status": status, "body": body, "hits": 0})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        return emit(server, url, server["producer"], *extra), handler.hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_server_error_is_retried_then_one_line_exit_1(server: dict[str, Any]) -> None:
    proc, hits = answering(server, 503, _Fixed.body, "--retries", "2")
    line = one_error_line(proc)
    assert proc.returncode == 1
    assert "server error" in line and "after 3 attempts" in line, line
    assert "503" in line and "log unreachable" in line, line
    assert hits == 3  # the first try and two retries, then it gave up


def test_a_200_that_is_not_results_is_exit_2(server: dict[str, Any]) -> None:
    proc, hits = answering(server, 200, b"<html>not the ledger</html>")
    line = one_error_line(proc)
    assert proc.returncode == 2 and "is not an auditledger API" in line, line
    assert hits == 1  # nothing to retry
