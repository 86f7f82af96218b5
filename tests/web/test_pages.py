"""The auditor pages in a real headless Chromium against a running demo: sign in, open
every page, compare what it shows with the JSON API, follow a finding to its evidence,
watch a countdown move and an alert arrive, verify an inclusion proof in the page, and
see another controller's page answer 404. Every page is screenshotted (conftest.SHOTS).

The tests share one demo server and one browser (session fixtures) and run in file order:
``test_sign_in`` first leaves the browser signed in for the rest.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from ledger.clock import format_rfc3339
from ledger.envelope import complete
from ledger.signing import load_private_key
from tests.web.conftest import HIDDEN, SEEN, SHOTS, Demo, shot

C = SEEN[0]
PAGES = ("", "deadlines", "findings", "rights-requests", "breaches", "ropa", "consents",
         "events", "report")
#: What a page for people must never show: Python or JSON spelling of values.
RAW = re.compile(r"\b(True|False|None|null|true|false)\b|\[\"|\{\"")


def wait(driver: Any, seconds: float = 15) -> WebDriverWait:
    return WebDriverWait(driver, seconds)


def open_page(driver: Any, demo: Demo, path: str) -> None:
    driver.get(demo.url + path)
    wait(driver).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))


def main_text(driver: Any) -> str:
    return driver.find_element(By.TAG_NAME, "main").text


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def foreign_resources(driver: Any, demo: Demo) -> list[str]:
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function (e) {return e.name})")
    return [n for n in names if not n.startswith(demo.url)]


def test_sign_in(browser: Any, demo: Demo) -> None:
    browser.get(demo.url + f"/c/{C}/findings")
    wait(browser).until(EC.url_contains("/signin"))
    assert "next=/c/" in browser.current_url
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    field = browser.find_element(By.ID, "api_key")
    label = browser.find_element(By.CSS_SELECTOR, "label[for=api_key]")
    assert label.text == "API key"

    field.send_keys("alk_nobody_knows_this_key")
    field.send_keys(Keys.ENTER)
    error = wait(browser).until(EC.visibility_of_element_located((By.ID, "signin-error")))
    assert "not known" in error.text
    assert browser.get_cookie("auditledger_session") is None
    shot(browser, "signin-error")

    browser.find_element(By.ID, "api_key").send_keys(demo.auditor, Keys.ENTER)
    wait(browser).until(EC.url_to_be(f"{demo.url}/c/{C}/findings"))  # back where it began
    cookie = browser.get_cookie("auditledger_session")
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    left = cookie["expiry"] - time.time()
    assert 7.9 * 3600 < left <= 8 * 3600 + 5  # expires: 8 hours after sign-in
    assert browser.execute_script("return document.cookie") == ""  # no script reads it


def test_controllers_overview_matches_api(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, "/")
    api = demo.api("/v1/controllers")["items"]
    assert [c["controller"] for c in api] == list(SEEN)
    cards = browser.find_elements(By.CSS_SELECTOR, "li.card")
    assert [c.find_element(By.CSS_SELECTOR, ".cid").text for c in cards] == list(SEEN)
    for card, ctl in zip(cards, api, strict=True):
        assert card.find_element(By.CSS_SELECTOR, ".size").text == str(ctl["size"])
        findings = demo.items(f"/v1/controllers/{ctl['controller']}/findings")
        shown = card.find_element(By.CSS_SELECTOR, ".findings a").text
        assert shown == str(len(findings))
        assert ctl["name"] in card.text
    assert HIDDEN not in main_text(browser)
    shot(browser, "controllers")


@pytest.mark.parametrize("slug", PAGES)
def test_every_page_opens_accessible_and_offline(browser: Any, demo: Demo, slug: str) -> None:
    path = f"/c/{C}" + (f"/{slug}" if slug else "")
    browser.get_log("browser")  # drop what earlier pages logged
    open_page(browser, demo, path)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert len(browser.find_elements(By.CSS_SELECTOR, "header[role=banner], header")) >= 1
    assert len(browser.find_elements(By.TAG_NAME, "main")) == 1
    assert len(browser.find_elements(By.TAG_NAME, "h1")) == 1
    current = browser.find_elements(By.CSS_SELECTOR, "nav.pages a[aria-current=page]")
    assert [a.get_attribute("href") for a in current] == [demo.url + path]
    for field in browser.find_elements(By.CSS_SELECTOR, "main input, main select"):
        if field.get_attribute("type") != "hidden":
            fid = field.get_attribute("id")
            assert browser.find_elements(By.CSS_SELECTOR, f"label[for='{fid}']"), fid
    text = main_text(browser)
    assert not RAW.search(text), RAW.search(text)
    assert foreign_resources(browser, demo) == []
    assert console_errors(browser) == []
    shot(browser, f"page-{slug or 'overview'}")


def test_times_in_the_controller_zone_beside_utc(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/rights-requests")
    api = demo.items(f"/v1/controllers/{C}/rights-requests")
    rows = browser.find_elements(By.CSS_SELECTOR, "#rights tbody tr")
    assert [r.get_attribute("id") for r in rows] == [f"request-{r['request_id']}" for r in api]
    received = rows[0].find_elements(By.TAG_NAME, "time")[0]
    at = datetime.fromisoformat(api[0]["received_at"].replace("Z", "+00:00"))
    assert received.get_attribute("datetime") == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "UTC" in received.text and ("CET" in received.text or "CEST" in received.text)
    for row, req in zip(rows, api, strict=True):
        assert req["status"].replace("_", " ") in row.find_element(By.CSS_SELECTOR,
                                                                   ".status").text


def test_finding_links_to_its_evidence_and_the_proof_verifies(browser: Any,
                                                             demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/findings")
    api = demo.items(f"/v1/controllers/{C}/findings")
    shown = browser.find_elements(By.CSS_SELECTOR, "li.finding")
    assert len(shown) == len(api) > 0
    for li, f in zip(shown, api, strict=True):
        links = [a.text for a in li.find_elements(By.CSS_SELECTOR, "a.evidence-link")]
        assert links == f["evidence"]
        detail = li.find_element(By.CSS_SELECTOR, ".detail")
        assert detail.get_attribute("data-detail") == f["detail"]
        if "Z," in f["detail"] or "Z " in f["detail"]:  # instants shown in the zone
            assert detail.find_elements(By.TAG_NAME, "time") and "UTC" in detail.text
    first = shown[0].find_element(By.CSS_SELECTOR, "a.evidence-link")
    event_id = first.text
    first.click()
    wait(browser).until(EC.url_contains(f"/events/{event_id}"))
    assert event_id in browser.find_element(By.TAG_NAME, "h1").text
    event = demo.api(f"/v1/controllers/{C}/proofs/inclusion/{event_id}")
    assert browser.find_element(By.ID, "ev-index").text == str(event["index"])

    browser.find_element(By.ID, "verify").click()
    result = browser.find_element(By.ID, "verify-result")
    wait(browser).until(lambda d: result.get_attribute("data-ok") in ("true", "false"))
    steps = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#verify-steps li")]
    assert result.get_attribute("data-ok") == "true", steps
    assert "Verified" in result.text
    assert len(steps) == 4 and all(s.startswith("✔") for s in steps), steps
    cp = demo.api(f"/v1/controllers/{C}/checkpoint")
    assert cp["root"] in steps[2]  # the root the page computed is the checkpoint's
    shot(browser, "event-verified")


def test_a_tampered_proof_fails_in_the_page(browser: Any, demo: Demo) -> None:
    """The in-page check is not a rubber stamp: each mutation must fail it."""
    assert "/events/" in browser.current_url  # the event page of the test above
    script = """
    var done = arguments[arguments.length - 1];
    var env = JSON.parse(document.getElementById('envelope-data').textContent);
    var proof = JSON.parse(document.getElementById('proof-data').textContent);
    function copy(x) { return JSON.parse(JSON.stringify(x)); }
    function flip(h) { return (h[0] === 'A' ? 'B' : 'A') + h.slice(1); }
    var cases = [];
    var p1 = copy(proof); p1.proof[0] = flip(p1.proof[0]); cases.push([env, p1]);
    var p2 = copy(proof); p2.index = p2.index ^ 1; cases.push([env, p2]);
    var e3 = copy(env); e3.occurred_at = '2000-01-01T00:00:00Z'; cases.push([e3, proof]);
    var p4 = copy(proof); p4.proof.pop(); cases.push([env, p4]);
    var p5 = copy(proof);
    p5.checkpoint = p5.checkpoint.replace(/\\n(\\d+)\\n/,
        function (m, n) { return '\\n' + (Number(n) + 1) + '\\n'; });
    p5.tree_size += 1; cases.push([env, p5]);
    Promise.all([auditledgerProof.verify(env, proof)].concat(cases.map(function (c) {
      return auditledgerProof.verify(c[0], c[1]).catch(function (e) { return {ok: false}; });
    }))).then(function (r) { done(r.map(function (x) { return x.ok; })); });
    """
    results = browser.execute_async_script(script)
    assert results == [True, False, False, False, False, False]


def test_deadlines_count_down_and_match_api(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/deadlines")
    api = demo.items(f"/v1/controllers/{C}/deadlines")
    rows = browser.find_elements(By.CSS_SELECTOR, "#deadlines tbody tr")
    assert [(r.get_attribute("data-case"), r.get_attribute("data-deadline")) for r in rows] \
        == [(f"{d['kind']}:{d['id']}", d["deadline"]) for d in api]
    breach = next(r for r in rows if r.get_attribute("data-case").startswith("breach:"))
    clock = breach.find_element(By.CSS_SELECTOR, ".countdown")
    first = clock.text
    assert re.fullmatch(r"\d+ h \d\d min \d\d s left", first), first
    wait(browser, 5).until(lambda d: clock.text != first)
    assert clock.text != first
    wait(browser).until(EC.text_to_be_present_in_element((By.ID, "stream-state"),
                                                         "Connected"))
    shot(browser, "deadlines")


def test_an_alert_arrives_on_the_board(browser: Any, demo: Demo) -> None:
    """A breach the controller became aware of 71.5 hours ago: its 48h, 60h and 71h
    alerts are due at once and must reach the open page through the stream."""
    assert browser.current_url.endswith("/deadlines")
    key = load_private_key(demo.data / "keys" / "producers" / C / "soc.pem")
    now = datetime.now(UTC)
    bid = "br-web-1"
    events = [complete({"type": t, "controller": C, "occurred_at": format_rfc3339(now),
                        "data": d}, key, "soc") for t, d in (
        ("breach.detected", {"breach_id": bid, "detected_at": format_rfc3339(
            now - timedelta(hours=72)), "description": "browser test"}),
        ("breach.aware", {"breach_id": bid,
                          "aware_at": format_rfc3339(now - timedelta(hours=71.5))}))]
    r = httpx.post(f"{demo.url}/v1/events", content=orjson.dumps(events), headers={
        "Authorization": f"Bearer {demo.admin}", "Content-Type": "application/json"})
    assert [x["status"] for x in r.json()] == ["accepted", "accepted"], r.text
    item = wait(browser, 30).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f'#alerts li[data-case="breach:{bid}"]')))
    assert bid in item.text
    thresholds = {li.get_attribute("data-threshold") for li in browser.find_elements(
        By.CSS_SELECTOR, f'#alerts li[data-case="breach:{bid}"]')}
    assert "71h" in thresholds or "48h" in thresholds, thresholds
    shot(browser, "deadlines-alert")
    item.find_element(By.LINK_TEXT, "Reload the board to see this case.").click()
    row = wait(browser).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f'#deadlines tr[data-case="breach:{bid}"]')))
    assert re.fullmatch(r"0 h \d\d min \d\d s left",
                        row.find_element(By.CSS_SELECTOR, ".countdown").text)


def test_breach_register_timelines_and_hours_left(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/breaches")
    api = demo.items(f"/v1/controllers/{C}/breaches")
    cards = browser.find_elements(By.CSS_SELECTOR, "article.breach")
    assert [c.get_attribute("id") for c in cards] == [f"breach-{b['breach_id']}" for b in api]
    for card, b in zip(cards, api, strict=True):
        steps = card.find_elements(By.CSS_SELECTOR, "ol.timeline li")
        assert len(steps) >= 2  # at least detected and aware
        if b["risk"] is None:
            assert "not yet assessed" in card.text
        if b["notified_at"] is None and b["status"] != "closed":
            clock = card.find_element(By.CSS_SELECTOR, ".countdown").text
            assert re.search(r"\d+ h \d\d min", clock), clock
    shot(browser, "breaches")


def test_record_of_processing_matches_api(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/ropa")
    ropa = demo.api(f"/v1/controllers/{C}/ropa")
    ids = [a.get_attribute("id") for a in browser.find_elements(By.CSS_SELECTOR,
                                                                  "article.activity")]
    assert ids == [f"activity-{a['activity_id']}" for a in ropa["activities"]]
    recipients = demo.items(f"/v1/controllers/{C}/recipients")
    rows = browser.find_elements(By.CSS_SELECTOR, "#recipients tbody tr")
    assert [r.get_attribute("id") for r in rows] == [f"recipient-{r['recipient_id']}"
                                                     for r in recipients]
    transfers = demo.items(f"/v1/controllers/{C}/transfers")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#transfers tbody tr")) == len(transfers)
    incomplete = [a for a in ropa["activities"] if not a["complete"]]
    for a in incomplete:
        card = browser.find_element(By.ID, f"activity-{a['activity_id']}")
        assert "no — lacks" in card.text


def test_consent_overview_matches_api(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/consents")
    r = httpx.get(f"{demo.url}/v1/controllers/{C}/consents",
                  headers={"Authorization": f"Bearer {demo.auditor}"})
    assert r.status_code == 200, r.text
    api = r.json()
    rows = browser.find_elements(By.CSS_SELECTOR, "#consents tbody tr")
    assert len(rows) == len(api["purposes"])
    for row, p in zip(rows, api["purposes"], strict=True):
        cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "th, td")]
        assert cells == [p["purpose"], *(str(p[k]) for k in (
            "in_force", "withdrawn", "expired", "subjects", "given_events",
            "withdrawn_events"))]
    shot(browser, "consents")


def test_the_report_opens_from_its_page(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/report")
    browser.find_element(By.CSS_SELECTOR, "form.report-form button").click()
    wait(browser).until(EC.url_contains("/report/file"))
    h1 = wait(browser).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
    assert "Accountability report" in h1.text
    assert "Bedre Bedrift" in h1.text
    assert foreign_resources(browser, demo) == []
    shot(browser, "report")


def test_another_controllers_pages_answer_404(browser: Any, demo: Demo) -> None:
    for path in (f"/c/{HIDDEN}", f"/c/{HIDDEN}/findings", f"/c/{HIDDEN}/events",
                 f"/c/{HIDDEN}/report/file?format=json",
                 "/c/NO-DOES-NOT-EXIST/deadlines"):
        open_page(browser, demo, path)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
        assert HIDDEN not in main_text(browser) or path.startswith(f"/c/{HIDDEN}")
    cookie = browser.get_cookie("auditledger_session")["value"]
    r = httpx.get(f"{demo.url}/c/{HIDDEN}/findings", cookies={"auditledger_session": cookie})
    api = httpx.get(f"{demo.url}/v1/controllers/{HIDDEN}/findings",
                    headers={"Authorization": f"Bearer {demo.auditor}"})
    assert r.status_code == api.status_code == 404
    # An event of a controller the key may not see is not found under a visible one.
    hidden_event = demo.api(f"/v1/controllers/{HIDDEN}/events", key=demo.admin,
                            limit=1)["items"][0]["event_id"]
    open_page(browser, demo, f"/c/{C}/events/{hidden_event}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    shot(browser, "not-found")


def phone(browser: Any, height: int = 844) -> None:
    """A 390 px wide phone screen (CDP device metrics: a desktop window cannot be made
    narrower than about 500 px)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 390, "height": height, "deviceScaleFactor": 1, "mobile": True})


def test_usable_on_a_phone(browser: Any, demo: Demo) -> None:
    try:
        phone(browser)
        for slug in PAGES:
            open_page(browser, demo, f"/c/{C}/{slug}" if slug else f"/c/{C}")
            width = browser.execute_script("return window.innerWidth")
            assert width == 390
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (slug, overflow)
            phone(browser, min(browser.execute_script(
                "return document.documentElement.scrollHeight"), 4000))
            browser.save_screenshot(str(SHOTS / f"phone-{slug or 'overview'}.png"))
            phone(browser)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_keyboard_skip_link(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}/findings")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.text == "Skip to content"
    active.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"


@pytest.mark.parametrize(("path", "ready"), [
    ("/docs", ".swagger-ui .information-container .title"),
    ("/redoc", "h1"),
])
def test_api_docs_work_offline(browser: Any, demo: Demo, path: str, ready: str) -> None:
    browser.get(demo.url + path)
    title = wait(browser, 30).until(EC.visibility_of_element_located((By.CSS_SELECTOR,
                                                                      ready)))
    assert "auditledger" in title.text
    assert foreign_resources(browser, demo) == []
    shot(browser, f"api{path.replace('/', '-')}")


def test_sign_out_ends_the_session(browser: Any, demo: Demo) -> None:
    open_page(browser, demo, f"/c/{C}")
    token = browser.get_cookie("auditledger_session")["value"]
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    wait(browser).until(EC.url_contains("/signin"))
    assert browser.get_cookie("auditledger_session") is None
    r = httpx.get(f"{demo.url}/c/{C}", cookies={"auditledger_session": token},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")
