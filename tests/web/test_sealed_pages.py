"""Sealed personal data on the pages, in a real headless Chromium against the running demo
(tests/web/conftest: ``demo``, ``browser``, ``shot``): the rights-request register and the
breach register say ``sealed (kept)`` or ``erased <when>`` for each case; an event's page
shows an auditor that data are kept but not what they say, the DPO (admin) the plaintext,
and everyone ``erased`` for the subject the demo erased (dsr-002). The browser is signed
out at the end (the session fixtures are shared with the other page tests)."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By

from tests.web.conftest import Demo, shot
from tests.web.test_forms import sign_in

C = "NO-921119224"


def rows(driver: Any) -> dict[str, str]:
    """Rights-request row id -> its Personal data cell."""
    return {tr.get_attribute("id").removeprefix("request-"):
            tr.find_element(By.CSS_SELECTOR, "td.personal").text
            for tr in driver.find_elements(By.CSS_SELECTOR, "#rights tbody tr[id]")}


def received_event(demo: Demo, request_id: str) -> str:
    (row,) = [r for r in demo.items(f"/v1/controllers/{C}/rights-requests")
              if r["request_id"] == request_id]
    return row["personal_data"]["events"][0]


def test_cases_and_events_show_sealed_and_erased(browser: Any, demo: Demo) -> None:
    try:
        sign_in(browser, demo, demo.auditor, f"/c/{C}/rights-requests")
        cells = rows(browser)
        assert cells["dsr-001"] == "sealed (kept)"
        assert cells["dsr-002"].startswith("erased 20"), cells["dsr-002"]
        shot(browser, "sealed-rights-requests")
        browser.get(f"{demo.url}/c/{C}/breaches")
        contact = browser.find_element(By.CSS_SELECTOR, "#breach-br-001 dd.personal").text
        assert contact == "sealed (kept)"

        kept, erased = received_event(demo, "dsr-001"), received_event(demo, "dsr-002")
        browser.get(f"{demo.url}/c/{C}/events?type=rights_request.received")
        listed = {tr.find_element(By.CSS_SELECTOR, "td a").text:
                  tr.find_element(By.CSS_SELECTOR, "td.personal").text
                  for tr in browser.find_elements(By.CSS_SELECTOR, "#events tbody tr")}
        assert listed[kept] == "sealed (kept)" and listed[erased].startswith("erased 20")
        browser.get(f"{demo.url}/c/{C}/events/{kept}")
        text = browser.find_element(By.ID, "ev-personal").text
        assert text == "sealed (kept) — shown to the DPO (admin) only"
        assert not browser.find_elements(By.ID, "sealed-fields")
        assert "@" not in browser.find_element(By.TAG_NAME, "main").text.split("{")[0]

        sign_in(browser, demo, demo.admin, f"/c/{C}/events/{kept}")
        fields = browser.find_element(By.ID, "sealed-fields").text
        sealed = demo.api(f"/v1/controllers/{C}/events/{kept}/sealed", demo.admin)["fields"]
        assert sealed["email"] in fields and sealed["name"] in fields
        shot(browser, "sealed-event-admin")
        browser.get(f"{demo.url}/c/{C}/events/{erased}")
        assert browser.find_element(By.ID, "ev-personal").text.startswith("erased 20")
        assert not browser.find_elements(By.ID, "sealed-fields")
        shot(browser, "sealed-event-erased")
    finally:
        browser.delete_all_cookies()
