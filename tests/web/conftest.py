"""A running ``auditledger demo`` and a real headless Chromium driving it.

The browser is Debian's ``chromium`` with its ``chromedriver`` (``scripts/bootstrap.sh
--full`` installs both), driven by Selenium with explicit paths, so Selenium Manager never
downloads a browser. Missing, they fail the suite loudly: these tests are never skipped.
Chromium resolves no host but the loopback (``--host-resolver-rules``), so a page that
tried to load an asset from the network would show it (the tests also list every
resource a page loaded). Screenshots go to ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CLI, cli_json, free_port, wait_until_healthy

CHROMIUM = Path(os.environ.get("AUDITLEDGER_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AUDITLEDGER_CHROMEDRIVER", "/usr/bin/chromedriver"))
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

SEEN = ("NO-921119224", "NO-HEDENGREN")  # the auditor key's controllers
HIDDEN = "DK-26459400"  # loaded by the demo, not visible to that key


class Demo:
    """The demo server: its URL, keys and data directory, and API calls with a key."""

    def __init__(self, url: str, data: Path, admin: str, auditor: str) -> None:
        self.url, self.data, self.admin, self.auditor = url, data, admin, auditor

    def api(self, path: str, key: str | None = None, **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", params=params, timeout=30,
                      headers={"Authorization": f"Bearer {key or self.auditor}"})
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return r.json()

    def items(self, path: str) -> list[dict[str, Any]]:
        return self.api(path, limit=1000)["items"]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("web-demo")
    data = tmp / "demo"
    loaded = cli_json("demo", "--data", str(data), "--load-only")
    admin = loaded["admin_api_key"]
    auditor = cli_json("apikey", "create", "--data", str(data), "--role", "auditor",
                       *[a for c in SEEN for a in ("--controller", c)])["api_key"]
    port = free_port()
    with (tmp / "serve.log").open("ab") as log:
        proc = subprocess.Popen([*CLI, "demo", "--data", str(data), "--port", str(port),
                                 "--json"], stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, timeout=120)
        deadline = time.monotonic() + 60  # the projections worker applies the demo log
        while httpx.get(f"{url}/readyz").json()["projections"].get("lag") != 0:
            assert time.monotonic() < deadline, (tmp / "serve.log").read_text()[-2000:]
            time.sleep(0.2)
        yield Demo(url, data, admin, auditor)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the browser tests need Debian's chromium and chromium-driver: missing"
                    f" {', '.join(missing)} (bash scripts/bootstrap.sh --full installs them)",
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=en-GB", "--no-first-run",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, name: str) -> Path:
    """A full-page screenshot (the window grown to the page's height, then restored)."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(max(height, 600), 4000))
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(size["width"], size["height"])
    return path
