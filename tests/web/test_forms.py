"""The DPO's forms in a real headless Chromium against the running demo (tests/web/conftest:
``demo``, ``browser``, ``shot``): sign in as admin, take a breach and rights requests through
every step, see each new state and the findings change on the pages, see the field errors
of a bad form, see an auditor key get no form and a 403 for a post, and find the events in
the log signed by ``web-forms`` with ``ext.recorded_by`` (through the API).

The forms work on ``NO-HEADSHED``, which the pages' tests do not look at; the browser is
signed out at the end (the session fixtures are shared with tests/web/test_pages.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.web.conftest import Demo, shot

C = "NO-HEADSHED"
OSLO = ZoneInfo("Europe/Oslo")


def wait(driver: Any, seconds: float = 20) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def local(at: datetime) -> str:
    return at.astimezone(OSLO).strftime("%Y-%m-%d %H:%M")


def keys(demo: Demo) -> dict[str, str]:
    return orjson.loads((demo.data / "demo-keys.json").read_bytes())


def sign_in(driver: Any, demo: Demo, key: str, path: str) -> None:
    driver.delete_all_cookies()
    driver.get(demo.url + path)
    wait(driver).until(EC.url_contains("/signin"))
    field = driver.find_element(By.ID, "api_key")
    field.send_keys(key)
    field.submit()
    wait(driver).until(EC.url_to_be(demo.url + path))


@pytest.fixture(scope="module")
def admin(browser: Any, demo: Demo) -> Iterator[Any]:
    sign_in(browser, demo, demo.admin, f"/c/{C}/record")
    yield browser
    browser.delete_all_cookies()  # test_pages.py begins signed out


def open_step(driver: Any, case: str, slug: str) -> Any:
    box = driver.find_element(By.ID, f"step-{case}-{slug}")
    if box.get_attribute("open") is None:
        box.find_element(By.TAG_NAME, "summary").click()
    return box


def fill(driver: Any, case: str, slug: str, values: dict[str, Any]) -> None:
    """Type ``values`` into the step's form and send it."""
    box = open_step(driver, case, slug)
    for name, value in values.items():
        fid = f"{case}-{slug}-{name}"
        if isinstance(value, list):  # checkboxes
            for v in value:
                box.find_element(By.CSS_SELECTOR, f"input[name={name}][value={v}]").click()
            continue
        el = driver.find_element(By.ID, fid)
        if el.tag_name == "select":
            Select(el).select_by_value(value)
        else:
            el.clear()
            el.send_keys(value)
    page = driver.find_element(By.TAG_NAME, "html")
    box.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # The answer's page, not this one (while it swaps, Chromium may answer a node
    # lookup with an inspector error: ask again).
    WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)).until(
        EC.staleness_of(page))


def recorded(driver: Any) -> str:
    """After a post: wait for the case page that shows the new state; its event id."""
    note = WebDriverWait(driver, 20, ignored_exceptions=(WebDriverException,)
                         ).until(lambda d: next(
        (e for e in d.find_elements(By.ID, "recorded") if e.text.startswith("Recorded:")),
        None))
    m = re.search(r"event ([0-9a-f-]{36})", note.text)
    assert m, note.text
    return m[1]


def state(driver: Any, field: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"#case-state dd[data-field={field}]").text


def case_findings(driver: Any) -> set[str]:
    return {e.get_attribute("data-code")
            for e in driver.find_elements(By.CSS_SELECTOR, "#case-findings [data-code]")}


def step(driver: Any, case: str, slug: str, values: dict[str, Any]) -> str:
    fill(driver, case, slug, values)
    return recorded(driver)


def test_a_breach_through_every_step(admin: Any, demo: Demo) -> None:
    driver, now = admin, datetime.now(OSLO)
    driver.get(f"{demo.url}/c/{C}/record")
    bid = driver.find_element(By.ID, "breach-detected-breach_id").get_attribute("value")
    assert re.fullmatch(r"br-\d{8}-[0-9a-f]{4}", bid)  # the suggested id
    detected = now - timedelta(days=4)
    ids = [step(driver, "breach", "detected", {
        "detected_at": local(detected), "description": "shared drive link found public",
        "source": "it-support", "nature": ["confidentiality"]})]
    assert driver.current_url.startswith(f"{demo.url}/c/{C}/record/breach/{bid}?recorded=")
    assert state(driver, "status") != ""
    shot(driver, "forms-breach-detected")

    ids.append(step(driver, "breach", "aware", {"aware_at": local(detected + timedelta(hours=1))}))
    # Aware four days ago, nobody notified: the 72 hours are gone.
    assert state(driver, "status") == "overdue"
    assert "breach_not_notified" in case_findings(driver)
    driver.get(f"{demo.url}/c/{C}/findings")
    assert bid in driver.find_element(By.TAG_NAME, "main").text  # on the findings page too
    driver.get(f"{demo.url}/c/{C}/record/breach/{bid}")

    ids.append(step(driver, "breach", "assessed", {
        "risk": "high", "subjects_approx": "120", "records_approx": "300",
        "data_categories": "contact, salary", "special_categories": "no"}))
    assert state(driver, "risk") == "high"
    ids.append(step(driver, "breach", "notified", {
        "authority": "Datatilsynet", "phase": "initial", "notified_at": local(now),
        "reference": "DT-2026-1234",
        "delay_reasons": "the drive's owner was on leave; the log review took three days"}))
    assert "Datatilsynet" not in state(driver, "notified_at")  # a time, in words
    assert state(driver, "notified_at") != "not yet"
    assert "breach_not_notified" not in case_findings(driver), "late, with reasons: no finding"
    ids.append(step(driver, "breach", "communicated", {
        "communicated_at": local(now), "subject_count": "120", "channel": "e-mail"}))
    assert state(driver, "subjects_communicated_at") != "not yet"
    ids.append(step(driver, "breach", "closed", {"summary": "link removed, access reviewed"}))
    assert state(driver, "status") == "closed" or state(driver, "closed_at") != "not yet"
    shot(driver, "forms-breach-closed")

    # A second breach, exempted from telling the subjects (Art. 34(3)(a)).
    driver.get(f"{demo.url}/c/{C}/record")
    bid2 = driver.find_element(By.ID, "breach-detected-breach_id").get_attribute("value")
    ids.append(step(driver, "breach", "detected", {"description": "encrypted laptop stolen"}))
    ids.append(step(driver, "breach", "aware", {}))
    ids.append(step(driver, "breach", "assessed", {
        "risk": "high", "subjects_approx": "30", "records_approx": "30",
        "data_categories": "contact"}))
    ids.append(step(driver, "breach", "exempted", {
        "ground": "a", "reason": "full-disk encryption, key not on the device"}))
    assert "a" in state(driver, "exemption")
    ids.append(step(driver, "breach", "closed", {}))

    events = api_events(demo, "breach.*")
    for event_id in ids:
        assert event_id in events, event_id
    mine = [events[i] for i in ids]
    assert [e["type"].split(".")[1] for e in mine[:6]] == [
        "detected", "aware", "assessed", "notified_authority", "subjects_communicated",
        "closed"]
    assert {e["data"]["breach_id"] for e in mine} == {bid, bid2}
    check_signed_by_forms(demo, mine)


def test_rights_requests_through_every_step(admin: Any, demo: Demo) -> None:
    driver, now = admin, datetime.now(OSLO)
    driver.get(f"{demo.url}/c/{C}/record")
    rid = driver.find_element(By.ID, "rights_request-received-request_id").get_attribute("value")
    ids = [step(driver, "rights_request", "received", {
        "right": "access", "received_at": local(now - timedelta(days=40)),
        "channel": "e-mail", "subject_identifier": "ola.nordmann@example.no"})]
    # Received 40 days ago, not answered: past the month and Headshed's 30-day promise.
    assert "dsr_overdue" in case_findings(driver)
    assert state(driver, "status") != ""
    ids.append(step(driver, "rights_request", "identity_requested", {
        "at": local(now - timedelta(days=39)), "method": "e-mail"}))
    ids.append(step(driver, "rights_request", "identity_verified", {
        "at": local(now - timedelta(days=38)), "method": "BankID"}))
    before = case_findings(driver)
    ids.append(step(driver, "rights_request", "extended", {
        "reason": "many systems to search", "subject_informed_at": local(now)}))
    # Told of the extension only now, after the first month: it does not count.
    assert "dsr_extension_not_notified_in_time" in case_findings(driver) - before
    ids.append(step(driver, "rights_request", "fulfilled", {
        "at": local(now), "method": "secure download"}))
    assert state(driver, "closed_at") != "not yet"
    shot(driver, "forms-rights-fulfilled")

    driver.get(f"{demo.url}/c/{C}/record")
    refused = driver.find_element(By.ID, "rights_request-received-request_id") \
        .get_attribute("value")
    ids.append(step(driver, "rights_request", "received", {
        "right": "erasure", "subject_identifier": "+47 912 34 567"}))
    assert "dsr_refused_without_complaint_info" not in case_findings(driver)
    ids.append(step(driver, "rights_request", "refused", {
        "at": local(now), "reason": "records kept under the Bookkeeping Act",
        "legal_ground": "Art. 17(3)(b)", "complaint_right_informed": "no"}))
    assert "dsr_refused_without_complaint_info" in case_findings(driver)

    driver.get(f"{demo.url}/c/{C}/record")
    ids.append(step(driver, "rights_request", "received", {
        "right": "objection", "subject_identifier": "kari@example.no"}))
    ids.append(step(driver, "rights_request", "withdrawn", {"reason": "asked by phone"}))
    assert "withdrawn" in state(driver, "status")

    api = demo.api(f"/v1/controllers/{C}/rights-requests", demo.admin, limit=1000)["items"]
    by_id = {r["request_id"]: r for r in api}
    assert by_id[rid]["status"] != by_id[refused]["status"]
    assert by_id[rid]["subject"].startswith("psn:")  # only the pseudonym is stored
    events = api_events(demo, "rights_request.*")
    mine = [events[i] for i in ids]
    assert [e["type"].split(".")[1] for e in mine] == [
        "received", "identity_requested", "identity_verified", "extended", "fulfilled",
        "received", "refused", "received", "withdrawn"]
    assert "example.no" not in orjson.dumps(mine).decode()
    check_signed_by_forms(demo, mine)


def test_a_bad_form_answers_with_its_field_errors(admin: Any, demo: Demo) -> None:
    driver = admin
    driver.get(f"{demo.url}/c/{C}/record")
    bid = driver.find_element(By.ID, "breach-detected-breach_id").get_attribute("value")
    step(driver, "breach", "detected", {"description": "wrong attachment sent"})
    size = len(api_events(demo, "breach.*"))
    fill(driver, "breach", "assessed", {"subjects_approx": "many", "records_approx": "3",
                                        "data_categories": "contact"})
    err = wait(driver).until(EC.visibility_of_element_located(
        (By.ID, "breach-assessed-subjects_approx-err")))
    assert "not a whole number" in err.text
    assert driver.find_element(By.ID, "breach-assessed-risk-err").text == "required"
    assert driver.find_element(By.ID, "breach-assessed-subjects_approx") \
        .get_attribute("aria-invalid") == "true"
    # What was typed is still there, and the page is the case page, not an error page.
    assert driver.find_element(By.ID, "breach-assessed-records_approx") \
        .get_attribute("value") == "3"
    assert bid in driver.find_element(By.TAG_NAME, "h1").text
    shot(driver, "forms-field-errors")
    # A time the ledger cannot hold, typed by hand: the field says why.
    fill(driver, "breach", "aware", {"aware_at": "2026-02-30 10:00"})
    err = wait(driver).until(EC.visibility_of_element_located(
        (By.ID, "breach-aware-aware_at-err")))
    assert "not a time" in err.text
    after = len(api_events(demo, "breach.*"))
    assert after == size, "nothing was recorded"
    # The page's status is 422: fetch it as the browser did, with its cookie.
    cookie = driver.get_cookie("auditledger_session")["value"]
    form = driver.find_element(By.CSS_SELECTOR, "#step-breach-closed form")
    token = form.find_element(By.NAME, "csrf_token").get_attribute("value")
    r = httpx.post(f"{demo.url}/c/{C}/record/breach/assessed", cookies={
        "auditledger_session": cookie}, data={"csrf_token": token, "breach_id": bid,
                                              "risk": "medium"})
    assert r.status_code == 422 and "required" in r.text
    r = httpx.post(f"{demo.url}/c/{C}/record/breach/closed", cookies={
        "auditledger_session": cookie}, data={"csrf_token": "forged", "breach_id": bid})
    assert r.status_code == 403, "no per-session token, no record"


def test_an_auditor_key_gets_no_form_and_a_403(browser: Any, demo: Demo) -> None:
    auditor = keys(demo)["auditor_api_key"]
    sign_in(browser, demo, auditor, f"/c/{C}/record")
    try:
        main = browser.find_element(By.TAG_NAME, "main")
        assert "may read but not record" in main.text
        assert not main.find_elements(By.CSS_SELECTOR, "form"), "no form for an auditor"
        first = browser.find_element(By.CSS_SELECTOR, "#cases-rights_request a")
        first.click()
        wait(browser).until(EC.presence_of_element_located((By.ID, "read-only")))
        assert not browser.find_elements(By.CSS_SELECTOR, "main form")
        shot(browser, "forms-auditor-read-only")
        cookie = browser.get_cookie("auditledger_session")["value"]
        r = httpx.post(f"{demo.url}/c/{C}/record/breach/detected",
                       cookies={"auditledger_session": cookie},
                       data={"breach_id": "br-auditor", "description": "x",
                             "detected_at": "2026-01-01 10:00"})
        assert r.status_code == 403 and "may read" in r.text
        assert not [e for e in api_events(demo, "breach.*").values()
                    if e["data"]["breach_id"] == "br-auditor"]
    finally:
        browser.delete_all_cookies()


def api_events(demo: Demo, types: str) -> dict[str, dict[str, Any]]:
    """The controller's events of ``types`` by id, through the API (all pages)."""
    out: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"type": types, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = demo.api(f"/v1/controllers/{C}/events", demo.admin, **params)
        for e in page["items"]:
            out[e["event_id"]] = e
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def check_signed_by_forms(demo: Demo, events: list[dict[str, Any]]) -> None:
    """Signed by ``web-forms`` (registered like any producer), naming the admin key's id."""
    admin_id = demo.admin.split("_")[1]
    assert {e["producer"] for e in events} == {"web-forms"}
    assert {e["data"]["ext"]["recorded_by"] for e in events} == {admin_id}
    assert demo.admin not in orjson.dumps(events).decode(), "never the secret"
    producers = demo.api(f"/v1/controllers/{C}/events", demo.admin,
                         type="producer.registered", limit=1000)["items"]
    (reg,) = [p for p in producers if p["data"]["producer_id"] == "web-forms"]
    assert reg["producer"] == "admin"  # signed by the controller's admin key
    assert reg["data"]["types"] == ["breach.*", "rights_request.*"]
