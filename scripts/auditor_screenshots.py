"""Take docs/auditors.md's screenshots: a fresh demo, served, driven by headless Chromium.

    .venv/bin/python scripts/auditor_screenshots.py [--out docs/img]

Debian's /usr/bin/chromium and /usr/bin/chromedriver (``scripts/bootstrap.sh --full``),
through Selenium; nothing is downloaded. The DPO walk-through records a breach on
NO-HEADSHED through the forms, so the pictures show the pages as a DPO leaves them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CLI, free_port, wait_until_healthy  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait

    tmp = Path(tempfile.mkdtemp(prefix="auditor-shots-"))
    data, port = tmp / "demo", free_port()
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen([*CLI, "demo", "--data", str(data), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=log)
    url = f"http://127.0.0.1:{port}"
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--lang=en-GB",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    wait = WebDriverWait(driver, 30)
    try:
        wait_until_healthy(url, proc, timeout=120)
        while httpx.get(f"{url}/readyz").json()["projections"].get("lag") != 0:
            time.sleep(0.2)
        keys = orjson.loads((data / "demo-keys.json").read_bytes())

        def shot(name: str, max_height: int = 1800) -> None:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, min(max(height, 700), max_height))
            driver.save_screenshot(str(out / f"auditors-{name}.png"))
            driver.set_window_size(1280, 900)
            print("wrote", out / f"auditors-{name}.png")

        def sign_in(key: str, path: str) -> None:
            driver.delete_all_cookies()
            driver.get(url + path)
            wait.until(EC.url_contains("/signin"))
            field = driver.find_element(By.ID, "api_key")
            field.send_keys(key)
            shot("signin")
            field.submit()
            wait.until(EC.url_to_be(url + path))

        def submit(box_id: str, values: dict[str, str]) -> None:
            box = driver.find_element(By.ID, box_id)
            if box.get_attribute("open") is None:
                box.find_element(By.TAG_NAME, "summary").click()
            for name, value in values.items():
                el = box.find_element(By.NAME, name)
                if el.tag_name == "select":
                    Select(el).select_by_value(value)
                else:
                    el.clear()
                    el.send_keys(value)
            page = driver.find_element(By.TAG_NAME, "html")
            box.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(EC.staleness_of(page))
            wait.until(lambda d: "Recorded:" in d.find_element(By.TAG_NAME, "main").text)

        # The auditor: what the demo says to open first.
        sign_in(keys["auditor_api_key"], "/c/NO-921119224/findings")
        shot("findings", 1400)
        driver.get(url + "/c/NO-HEADSHED/record")
        shot("auditor-read-only", 900)

        # The DPO: a breach on Headshed, detected yesterday.
        sign_in(keys["admin_api_key"], "/c/NO-HEADSHED/record")
        oslo = ZoneInfo("Europe/Oslo")
        when = (datetime.now(oslo) - timedelta(hours=30)).strftime("%Y-%m-%d %H:%M")
        driver.find_element(By.ID, "step-breach-detected").find_element(
            By.TAG_NAME, "summary").click()
        driver.find_element(By.ID, "breach-detected-description").send_keys(
            "Customer list e-mailed to a wrong address")
        shot("record-new-breach", 1300)
        submit("step-breach-detected", {"detected_at": when})
        submit("step-breach-aware", {"aware_at": when})
        submit("step-breach-assessed", {"risk": "risk", "subjects_approx": "80",
                                        "records_approx": "80",
                                        "data_categories": "name, contact"})
        shot("breach-case", 1000)
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
