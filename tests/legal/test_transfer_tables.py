"""Chapter V: every table row's window, the named boundary days, and the table's contents."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from ledger.paths import SCHEMAS
from projections.legal.transfers import (
    UnknownDestinationError,
    UnknownMechanismError,
    in_eea,
    judge_transfer,
    load_tables,
    tables,
)

DAY = timedelta(days=1)
LEGAL = SCHEMAS / "legal"
THIRD = "BR"  # a third country without an adequacy decision


def _rows(name: str) -> list[dict]:
    return json.loads((LEGAL / name).read_text())["rows"]


def _d(s: str) -> date:
    return date.fromisoformat(s)


ADEQUACY = _rows("adequacy.json")
MECHS = _rows("mechanisms.json")
EEA = _rows("eea.json")


@pytest.mark.parametrize("name", ["adequacy.json", "mechanisms.json", "eea.json"])
def test_every_row_has_window_and_source(name: str) -> None:
    for row in _rows(name):
        assert row["source"].strip(), row
        assert "valid_to" in row, row
        start = _d(row["valid_from"])
        assert row["valid_to"] is None or start <= _d(row["valid_to"]), row


# --- each row: day before invalid, first day valid, day after the end invalid ----------------


@pytest.mark.parametrize("row", ADEQUACY, ids=lambda r: f"{r['country']}-{r['mechanism']}")
def test_adequacy_row_window(row: dict) -> None:
    """The row's own window; a neighbouring day may be valid on something else (the next
    row of a renewed decision, the UK bridge), never on this row's source."""
    cc, mech, start = row["country"], row["mechanism"], _d(row["valid_from"])
    before = judge_transfer(cc, mech, start - DAY)
    assert not before.valid or row["source"] not in before.reason
    first = judge_transfer(cc, mech, start)
    assert first.valid and not first.occasional_only
    assert row["source"] in first.reason
    if row["valid_to"]:
        end = _d(row["valid_to"])
        assert row["source"] in judge_transfer(cc, mech, end).reason
        after = judge_transfer(cc, mech, end + DAY)
        assert not after.valid or row["source"] not in after.reason


@pytest.mark.parametrize("row", MECHS, ids=lambda r: r["mechanism"])
def test_mechanism_row_window(row: dict) -> None:
    mech, start = row["mechanism"], _d(row["valid_from"])
    assert not judge_transfer(THIRD, mech, start - DAY).valid
    first = judge_transfer(THIRD, mech, start)
    assert first.valid
    assert first.occasional_only is row["occasional_only"]
    if row["valid_to"]:
        end = _d(row["valid_to"])
        assert judge_transfer(THIRD, mech, end).valid
        assert not judge_transfer(THIRD, mech, end + DAY).valid


@pytest.mark.parametrize("row", EEA, ids=lambda r: r["country"])
def test_eea_row_window(row: dict) -> None:
    cc, start = row["country"], _d(row["valid_from"])
    bridge = row["status"] == "bridge"
    before = judge_transfer(cc, "none", start - DAY)
    assert not before.valid or bridge  # the UK bridge follows the transition period
    first = judge_transfer(cc, "none", start).reason
    assert first == ("not a transfer to a third country: " + row["source"] if bridge
                     else "EEA")
    if row["valid_to"]:
        end = _d(row["valid_to"])
        assert judge_transfer(cc, "none", end).valid
        after = judge_transfer(cc, "none", end + DAY)
        assert not after.valid or after.reason != first


# --- the boundaries LEGAL_RULES.md names ---------------------------------------------------


@pytest.mark.parametrize(
    ("country", "mechanism", "on", "valid"),
    [
        ("US", "privacy_shield", date(2016, 7, 31), False),
        ("US", "privacy_shield", date(2016, 8, 1), True),
        ("US", "privacy_shield", date(2020, 7, 15), True),
        ("US", "privacy_shield", date(2020, 7, 16), False),  # C-311/18
        ("US", "dpf", date(2023, 7, 9), False),
        ("US", "dpf", date(2023, 7, 10), True),
        ("US", "adequacy", date(2023, 7, 10), False),
        ("US", "adequacy", date(2026, 1, 1), False),
        ("US", "none", date(2026, 1, 1), False),
        ("US", "scc_2010", date(2022, 12, 27), True),
        ("US", "scc_2010", date(2022, 12, 28), False),
        ("IN", "scc_2021", date(2021, 6, 26), False),
        ("IN", "scc_2021", date(2021, 6, 27), True),
        ("GB", "adequacy", date(2021, 6, 27), True),  # the bridge: not a transfer
        ("GB", "adequacy", date(2021, 6, 28), True),
        ("GB", "adequacy", date(2025, 12, 27), True),  # extension, then renewal
        ("GB", "adequacy", date(2025, 12, 28), True),
        ("GB", "adequacy", date(2031, 12, 27), True),
        ("GB", "adequacy", date(2031, 12, 28), False),
        ("GB", "none", date(2020, 12, 31), True),  # transition period: EU law applied
        ("GB", "none", date(2021, 1, 1), True),  # TCA Art. FINPROV.10A bridge
        ("GB", "none", date(2021, 6, 27), True),
        ("GB", "none", date(2021, 6, 28), False),
        ("GB", "scc_2021", date(2021, 6, 28), True),
        ("BR", "adequacy", date(2026, 1, 25), False),
        ("BR", "adequacy", date(2026, 1, 26), True),
        ("US", "safe_harbour", date(2000, 7, 25), False),
        ("US", "safe_harbour", date(2000, 7, 26), True),
        ("US", "safe_harbour", date(2015, 10, 5), True),
        ("US", "safe_harbour", date(2015, 10, 6), False),  # C-362/14
        ("US", "scc_2010", date(2021, 9, 26), True),
        ("CA", "adequacy", date(2026, 1, 1), True),
        ("JP", "adequacy", date(2019, 1, 22), False),
        ("JP", "adequacy", date(2019, 1, 23), True),
        ("KR", "adequacy", date(2021, 12, 17), True),
        ("CN", "adequacy", date(2026, 1, 1), False),
        ("CH", "dpf", date(2026, 1, 1), False),  # dpf is a US framework
        ("EPO", "adequacy", date(2025, 7, 15), True),
        ("EPO", "adequacy", date(2025, 7, 14), False),
        ("BR", "bcr", date(2026, 1, 1), True),
        ("BR", "art46_other", date(2026, 1, 1), True),
    ],
)
def test_named_boundaries(country: str, mechanism: str, on: date, valid: bool) -> None:
    assert judge_transfer(country, mechanism, on).valid is valid


def test_canada_is_commercial_organisations_only() -> None:
    v = judge_transfer("CA", "adequacy", date(2026, 1, 1))
    assert v.valid and "commercial" in v.reason


def test_us_adequacy_reason_points_to_dpf() -> None:
    assert "dpf" in judge_transfer("US", "adequacy", date(2026, 1, 1)).reason


def test_privacy_shield_reason_cites_schrems_ii() -> None:
    assert "C-311/18" in judge_transfer("US", "privacy_shield", date(2020, 7, 16)).reason


@pytest.mark.parametrize("letter", "abcdefg")
def test_derogations_are_occasional_only(letter: str) -> None:
    v = judge_transfer("BR", f"derogation_49_1_{letter}", date(2026, 1, 1))
    assert v.valid and v.occasional_only and "occasional" in v.reason


@pytest.mark.parametrize("mechanism", ["none", "scc_2021", "adequacy", "derogation_49_1_a"])
def test_inside_eea_is_valid_whatever_the_mechanism(mechanism: str) -> None:
    v = judge_transfer("no", mechanism, date(2026, 1, 1))
    assert (v.valid, v.reason, v.occasional_only) == (True, "EEA", False)


def test_eea_today_is_eu27_plus_three() -> None:
    members = {cc for cc in tables().eea if in_eea(cc, date(2026, 1, 1))}
    assert len(members) == 30
    assert {"IS", "LI", "NO"} <= members
    assert "GB" not in members and "CH" not in members


def test_adequacy_list_of_legal_rules_is_complete() -> None:
    listed = {"AD", "AR", "BR", "CA", "FO", "GG", "IL", "IM", "JP", "JE", "NZ", "KR", "CH", "GB",
              "UY"}
    in_force = {cc for (cc, mech) in tables().adequacy if mech == "adequacy" and cc != "EPO"}
    assert in_force == listed
    assert ("EPO", "adequacy") in tables().adequacy
    assert ("US", "adequacy") not in tables().adequacy


def test_unknown_inputs() -> None:
    with pytest.raises(UnknownDestinationError):
        judge_transfer("XX", "scc_2021", date(2026, 1, 1))
    with pytest.raises(UnknownMechanismError):
        judge_transfer("US", "model_clauses", date(2026, 1, 1))
    with pytest.raises(UnknownDestinationError):
        judge_transfer("US", "scc_2021", date(2026, 1, 1), exporter="XX")


def test_tables_loaded_once() -> None:
    assert tables() is tables()


def test_loader_rejects_row_without_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("eea.json", "adequacy.json", "mechanisms.json"):
        (tmp_path / name).write_text((LEGAL / name).read_text())
    doc = json.loads((LEGAL / "mechanisms.json").read_text())
    del doc["rows"][0]["source"]
    (tmp_path / "mechanisms.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="source"):
        load_tables(tmp_path)
