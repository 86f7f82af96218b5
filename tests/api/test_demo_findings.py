"""The demo shows what the seeds' README says an auditor should question.

``/work/shared/seeds/README.md`` lists, per notice, what is "worth questioning"; the demo
tenants (``examples/controllers/``) model each as events, and here every one must come out
of the read API as its finding, for the right controller, with evidence events that are in
that controller's log. The table is also docs/auditors.md's ("What the demo shows").
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.service import Ledger
from tests.conftest import CLI

#: controller -> [(finding code, a phrase its detail must hold, the seed's question)]
EXPECTED: dict[str, list[tuple[str, str, str]]] = {
    "NO-HEADSHED": [  # 000
        ("dsr_overdue", "hs-dsr-2025-01", "a 30-day promise is not one month"),
    ],
    "NO-HEDENGREN": [  # 001
        ("transfer_without_valid_mechanism", "US", "US transfers with no safeguard"),
        ("ropa_incomplete", "transfer_safeguard:crm-vendor", "no safeguard in the record"),
    ],
    "NO-921119224": [  # 002
        ("dsr_promise_missed", "dsr-002", "30 days vs one month"),
        ("breach_awareness_not_recorded", "br-003", "discovery is not awareness"),
        ("transfer_without_valid_mechanism", "2023-05-15", "DPF validity depends on the date"),
    ],
    "DK-26459400": [  # 003
        ("transfer_without_valid_mechanism", "US", "third-country transfer, no mechanism"),
        ("ropa_incomplete", "transfer_undeclared:surveymonkey", "transfer not in the record"),
    ],
    "NO-UNNAMED": [  # 004
        ("ropa_incomplete", "controller_contact", "no controller identity"),
        ("processing_basis_not_declared", "A6-1-a", "'consent' while the bases are contract"),
    ],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("demo") / "demo-data"
    proc = subprocess.run([*CLI, "demo", "--data", str(data), "--load-only", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {"data": data, **orjson.loads(proc.stdout)}


def test_the_demo_prints_where_to_sign_in(demo: dict[str, Any]) -> None:
    assert demo["url"] == "http://127.0.0.1:8080/"
    assert demo["auditor_api_key"].startswith("alk_")
    assert demo["admin_api_key"].startswith("alk_")
    assert demo["auditor_api_key"] in demo["text"] and demo["admin_api_key"] in demo["text"]
    assert "open first: http://127.0.0.1:8080/c/NO-921119224/findings" in demo["text"]
    again = subprocess.run([*CLI, "demo", "--data", str(demo["data"]), "--load-only",
                            "--json"], capture_output=True, text=True, timeout=300)
    doc = orjson.loads(again.stdout)
    assert set(doc["loaded"].values()) == {0}, "a second run loads nothing"
    assert (doc["auditor_api_key"], doc["admin_api_key"]) == (demo["auditor_api_key"],
                                                              demo["admin_api_key"])


def test_every_finding_the_seeds_list_appears_with_its_evidence(demo: dict[str, Any]) -> None:
    ledger = Ledger.open(Path(demo["data"]))
    try:
        client = TestClient(create_app(ledger))
        auth = {"Authorization": f"Bearer {demo['auditor_api_key']}"}
        listed = client.get("/v1/controllers", headers=auth).json()
        ids = {c["controller"] if isinstance(c, dict) else c
               for c in listed.get("items", listed)}
        assert set(EXPECTED) <= ids
        missing = []
        for controller, wanted in EXPECTED.items():
            resp = client.get(f"/v1/controllers/{controller}/findings",
                              params={"limit": 1000}, headers=auth)
            assert resp.status_code == 200, resp.text
            findings = resp.json()["items"]
            for code, phrase, question in wanted:
                hits = [f for f in findings if f["code"] == code and phrase in f["detail"]]
                if not hits:
                    missing.append(f"{controller}: {code} ({phrase}) — {question}")
                    continue
                for f in hits:
                    assert f["controller"] == controller
                    assert f["evidence"], f
                    stored = ledger.log.lookup(controller, f["evidence"])
                    assert set(stored) == set(f["evidence"]), f
        assert not missing, missing
    finally:
        ledger.close()


def test_the_30_day_promise_kept_is_not_the_month_kept(demo: dict[str, Any]) -> None:
    """Headshed answered on day 30, as it promises; the legal month ended two days before
    (28 February 2025): overdue, and no promise missed."""
    ledger = Ledger.open(Path(demo["data"]))
    try:
        client = TestClient(create_app(ledger))
        auth = {"Authorization": f"Bearer {demo['auditor_api_key']}"}
        rr = client.get("/v1/controllers/NO-HEADSHED/rights-requests", headers=auth,
                        params={"limit": 1000}).json()["items"]
        (req,) = [r for r in rr if r["request_id"] == "hs-dsr-2025-01"]
        assert (req["due"], req["promised_due"], req["binding_due"]) == (
            "2025-02-28", "2025-03-02", "2025-02-28")
        codes = {f["code"] for f in client.get("/v1/controllers/NO-HEADSHED/findings",
                                               headers=auth).json()["items"]
                 if "hs-dsr-2025-01" in f["detail"]}
        assert codes == {"dsr_overdue"}
    finally:
        ledger.close()
