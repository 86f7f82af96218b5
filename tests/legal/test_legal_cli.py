"""``auditledger deadline …`` and ``auditledger transfer check`` through the real CLI app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ledger import cli


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    if not any(g.name == "deadline" for g in cli.app.registered_groups):
        cli._load_plugins()
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli.app, list(args))

    return invoke


def _json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_rights(run) -> None:  # type: ignore[no-untyped-def]
    out = _json(run("deadline", "rights", "--received", "2026-11-20", "--country", "NO", "--json"))
    assert out == {
        "due": "2026-12-21",
        "extended_due": "2027-02-22",
        "promised_due": None,
        "binding_due": "2026-12-21",
    }


def test_rights_with_promise(run) -> None:  # type: ignore[no-untyped-def]
    out = _json(
        run(
            "deadline", "rights", "--received", "2024-01-31", "--country", "no",
            "--promise-days", "30", "--json",
        )
    )  # fmt: skip
    assert out["promised_due"] == "2024-03-01"
    assert out["due"] == "2024-02-29"
    assert out["binding_due"] == "2024-02-29"


def test_rights_received_instant_uses_tz(run) -> None:  # type: ignore[no-untyped-def]
    args = ("deadline", "rights", "--received", "2023-01-30T23:30:00Z", "--country", "NO")
    assert _json(run(*args, "--tz", "Europe/Oslo", "--json"))["due"] == "2023-02-28"
    assert _json(run(*args, "--json"))["due"] == "2023-02-28"  # 30 Jan + 1 month (UTC)
    assert _json(run(*args, "--tz", "America/New_York", "--json"))["due"] == "2023-02-28"
    late = ("deadline", "rights", "--received", "2026-11-19T23:30:00Z", "--country", "NO")
    assert _json(run(*late, "--json"))["due"] == "2026-12-21"  # 19 Nov UTC -> Sat 19 Dec
    assert _json(run(*late, "--tz", "Europe/Oslo", "--json"))["due"] == "2026-12-21"


def test_rights_readable(run) -> None:  # type: ignore[no-untyped-def]
    r = run("deadline", "rights", "--received", "2026-11-20", "--country", "NO")
    assert r.exit_code == 0
    assert "due=2026-12-21" in r.stdout


def test_breach(run) -> None:  # type: ignore[no-untyped-def]
    out = _json(
        run("deadline", "breach", "--aware", "2026-12-24T16:00:00+01:00",
            "--tz", "Europe/Oslo", "--json")
    )  # fmt: skip
    assert out == {
        "authority_due": "2026-12-27T15:00:00.000Z",
        "authority_due_local": "2026-12-27T16:00:00.000+01:00",
    }


def test_breach_default_tz_is_utc(run) -> None:  # type: ignore[no-untyped-def]
    out = _json(run("deadline", "breach", "--aware", "2026-03-27T11:00:00Z", "--json"))
    assert out["authority_due"] == "2026-03-30T11:00:00.000Z"
    assert out["authority_due_local"] == "2026-03-30T11:00:00.000+00:00"


@pytest.mark.parametrize(
    ("country", "mechanism", "on", "valid"),
    [
        ("US", "privacy_shield", "2020-07-15", True),
        ("US", "privacy_shield", "2020-07-16", False),
        ("US", "dpf", "2023-07-10", True),
        ("US", "adequacy", "2023-07-10", False),
        ("NO", "none", "2026-01-01", True),
        ("IN", "none", "2026-01-01", False),
    ],
)
def test_transfer_check(run, country, mechanism, on, valid) -> None:  # type: ignore[no-untyped-def]
    out = _json(
        run("transfer", "check", "--country", country, "--mechanism", mechanism,
            "--on", on, "--json")
    )  # fmt: skip
    assert set(out) == {"valid", "reason"}
    assert out["valid"] is valid
    assert out["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("deadline", "rights", "--received", "2026-02-30", "--country", "NO"), "date"),
        (("deadline", "rights", "--received", "yesterday", "--country", "NO"), "date"),
        (("deadline", "rights", "--received", "2026-02-03", "--country", "ZZ"), "country"),
        (
            ("deadline", "rights", "--received", "2026-02-03", "--country", "NO", "--tz", "X/Y"),
            "time zone",
        ),
        (("deadline", "breach", "--aware", "2026-12-24T16:00:00"), "offset"),
        (("deadline", "breach", "--aware", "not-a-time"), "RFC 3339"),
        (("deadline", "rights", "--received", "2026-02-03T10:00", "--country", "NO"), "offset"),
        (("deadline", "breach", "--aware", "2026-12-24T16:00:00Z", "--tz", "Nowhere"), "time zone"),
        (
            ("transfer", "check", "--country", "XX", "--mechanism", "dpf", "--on", "2024-01-01"),
            "country",
        ),
        (
            ("transfer", "check", "--country", "US", "--mechanism", "sc", "--on", "2024-01-01"),
            "mechanism",
        ),
        (
            ("transfer", "check", "--country", "US", "--mechanism", "dpf", "--on", "2024-13-01"),
            "date",
        ),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(run, args, message) -> None:  # type: ignore[no-untyped-def]
    r = run(*args, "--json")
    assert r.exit_code != 0
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
