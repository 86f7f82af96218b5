"""No personal data in clear anywhere the demo writes: the log, the read models, the key
store, the API keys, every other file of the data directory, and what the API answers an
auditor. The demo's people (names, e-mail addresses, phone numbers) are collected from the
generator itself (``ledger.demo_people``), and generic e-mail and phone patterns catch
what a list would miss."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.demo import load_demo
from ledger.demo_people import People
from ledger.envelope import normalise_identifier
from ledger.service import Ledger

#: An e-mail address. The log's own keys ``CONTROLLER@<event id>`` (idempotency scope)
#: have an @ too: a domain that starts with a UUID is not an address.
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@(?![0-9a-f]{8}-[0-9a-f]{4}-)[A-Za-z0-9-]+"
                   rb"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: A Nordic telephone number, spaced or in E.164.
PHONE = re.compile(rb"\+4[57][ ]?[0-9]{3}[ ]?[0-9]{2}[ ]?[0-9]{3}(?![0-9])")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("privacy") / "demo"
    people: dict[str, People] = {}
    summary = load_demo(data, progress=False, people=people)
    assert summary["verify"]["ok"]
    ledger = Ledger.open(data)
    try:  # build the read models and collect what an auditor is answered
        client = TestClient(create_app(ledger))
        auth = {"Authorization": f"Bearer {summary['auditor_api_key']}"}
        answers: list[bytes] = []
        for c in people:
            base = f"/v1/controllers/{c}"
            for route in ("/events?limit=1000", "/rights-requests", "/breaches",
                          "/findings?limit=1000", "/consents", "/report",
                          "/report?format=html", "/report?format=csv", "/deadlines"):
                r = client.get(base + route, headers=auth)
                assert r.status_code == 200, (route, r.text)
                answers.append(r.content)
            for case in ("rights-requests", "breaches"):
                for row in client.get(f"{base}/{case}", headers=auth).json()["items"]:
                    for eid in row["personal_data"]["events"]:
                        r = client.get(f"{base}/events/{eid}/sealed", headers=auth)
                        answers.append(r.content)
        admin = {"Authorization": f"Bearer {summary['admin_api_key']}"}
        opened = [client.get(f"/v1/controllers/{c}/events/{eid}/sealed", headers=admin).json()
                  for c in people
                  for row in client.get(f"/v1/controllers/{c}/rights-requests",
                                        headers=admin).json()["items"]
                  for eid in row["personal_data"]["events"]]
    finally:
        ledger.close()
    return {"data": data, "people": people, "answers": answers, "opened": opened}


def needles(people: dict[str, People]) -> set[bytes]:
    out: set[bytes] = set()
    for p in (p for ps in people.values() for p in ps.made.values()):
        out |= {p.name.encode(), p.email.encode(), p.phone.encode(),
                normalise_identifier(p.phone).encode(), p.email.split("@")[0].encode()}
    return out


def test_the_demo_made_people_and_seals_their_details(demo: dict[str, Any]) -> None:
    made = sum(len(p.made) for p in demo["people"].values())
    assert made > 200, made  # subscribers, requesters, breach contacts
    # The admin reads them back (the scan below is not passing because nothing was kept).
    opened = {o["state"] for o in demo["opened"]}
    assert opened == {"sealed", "erased"}, opened
    emails = {p.email for ps in demo["people"].values() for p in ps.made.values()}
    assert any(o.get("fields", {}).get("email") in emails for o in demo["opened"])


def test_no_store_holds_personal_data_in_clear(demo: dict[str, Any]) -> None:
    data: Path = demo["data"]
    files = [p for p in data.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"ledger.sqlite", "readmodels.sqlite", "auth.sqlite", "keystore.sqlite"} <= names
    wanted = needles(demo["people"])
    found: list[str] = []
    for path in files:
        blob = path.read_bytes()
        found += [f"{path.name}: {n.decode()}" for n in wanted if n in blob]
        found += [f"{path.name}: e-mail {m.decode()}" for m in EMAIL.findall(blob)]
        found += [f"{path.name}: phone {m.decode()}" for m in PHONE.findall(blob)]
    assert not found, found[:20]
    assert sum(p.stat().st_size for p in files) > 1_000_000  # a real demo was scanned


def test_auditor_answers_hold_no_personal_data(demo: dict[str, Any]) -> None:
    wanted = needles(demo["people"])
    blob = b"\n".join(demo["answers"])
    assert b'"sealed"' in blob and b'"erased"' in blob  # the states, not the data
    assert [n for n in wanted if n in blob] == []
    assert EMAIL.findall(blob) == [] and PHONE.findall(blob) == []


def test_the_detector_finds_what_it_looks_for(demo: dict[str, Any]) -> None:
    """The scan is not blind: the same patterns find the people in the admin's opened
    answers."""
    blob = orjson.dumps(demo["opened"])
    assert EMAIL.findall(blob) and [n for n in needles(demo["people"]) if n in blob]


def test_postgresql_read_models_hold_no_personal_data(demo: dict[str, Any],
                                                      pg_dsn: str) -> None:
    """The demo's log projected into PostgreSQL read models (a schema of their own), and
    every row of every table of that schema scanned as text."""
    import psycopg

    from projections.runner import ProjectionRunner, open_source
    from projections.store import PostgresStore

    schema = f"privacy_{uuid.uuid4().hex[:10]}"
    store = PostgresStore(pg_dsn, schema=schema)
    source, log = open_source(demo["data"])
    try:
        ProjectionRunner(source, store).run_once()
    finally:
        source.close()
        log.close()
        store.close()
    chunks: list[bytes] = []
    with psycopg.connect(pg_dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,))]
        for table in tables:
            chunks += [r[0].encode() for r in conn.execute(
                f'SELECT t::text FROM "{schema}"."{table}" t')]
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    blob = b"\n".join(chunks)
    assert len(tables) > 3 and len(chunks) > 1000, (tables, len(chunks))
    assert b"psn:" in blob  # the subjects are there, as pseudonyms
    assert [n for n in needles(demo["people"]) if n in blob] == []
    assert EMAIL.findall(blob) == [] and PHONE.findall(blob) == []
