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
    assert set(out) == {"valid", "reason", "warnings"}
    assert out["valid"] is valid
    assert out["reason"]
    assert out["warnings"] == []


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


RIGHTS = ("deadline", "rights", "--country", "NO")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # DESIGN.md: dates are YYYY-MM-DD only (date.fromisoformat alone takes these)
        ((*RIGHTS, "--received", "20260131"), "YYYY-MM-DD"),
        ((*RIGHTS, "--received", "2026-W05-6"), "YYYY-MM-DD"),
        ((*RIGHTS, "--received", "2026-W05"), "YYYY-MM-DD"),
        (("transfer", "check", "--country", "US", "--mechanism", "dpf", "--on", "20240101"),
         "YYYY-MM-DD"),
        (("transfer", "check", "--country", "IN", "--mechanism", "scc_2010", "--on",
          "2022-01-01", "--contract-date", "2021-W01-1"), "--contract-date"),
        # a promise of fewer than one day is no promise
        ((*RIGHTS, "--received", "2026-01-31", "--promise-days", "0"), "at least 1"),
        ((*RIGHTS, "--received", "2026-01-31", "--promise-days", "-5"), "at least 1"),
        # click's own usage errors: one line too, never a usage box
        (RIGHTS, "Missing option '--received'"),
        ((*RIGHTS, "--received", "2026-01-31", "--promise-days", "x"), "--promise-days"),
        ((*RIGHTS, "--received", "2026-01-31", "--promise-days", "1.5"), "--promise-days"),
        ((*RIGHTS, "--received", "2026-01-31", "--bogus"), "No such option"),
        (("deadline", "breach"), "Missing option '--aware'"),
        (("transfer", "check", "--country", "US", "--on", "2024-01-01"),
         "Missing option '--mechanism'"),
        (("transfer", "check", "--country", "US", "--mechanism", "dpf", "--on", "2024-01-01",
          "--exporter", "XX"), "country"),
        (("deadline", "nosuch"), "No such command"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(run, args, message) -> None:  # type: ignore[no-untyped-def]
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Usage:" not in r.stderr and "╭" not in r.stderr


def test_usage_error_in_a_real_process() -> None:
    import subprocess

    from tests.conftest import CLI

    r = subprocess.run([*CLI, "deadline", "rights", "--country", "NO"], capture_output=True,
                       text=True, timeout=60)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "error: Missing option '--received'.\n"


def test_help_still_works(run) -> None:  # type: ignore[no-untyped-def]
    r = run("deadline", "rights", "--help")
    assert r.exit_code == 0 and "--promise-days" in r.stdout


def test_promise_of_one_day(run) -> None:  # type: ignore[no-untyped-def]
    out = _json(run(*RIGHTS, "--received", "2026-01-31", "--promise-days", "1", "--json"))
    assert out["promised_due"] == "2026-02-01" and out["binding_due"] == "2026-02-01"


def test_transfer_check_exporter_warning(run) -> None:  # type: ignore[no-untyped-def]
    args = ("transfer", "check", "--country", "BR", "--mechanism", "adequacy",
            "--on", "2026-06-01")
    eu = _json(run(*args, "--exporter", "DE", "--json"))
    assert eu["valid"] is True and eu["warnings"] == []
    no = _json(run(*args, "--exporter", "NO", "--json"))
    assert no["valid"] is True and len(no["warnings"]) == 1
    assert "EEA Agreement" in no["warnings"][0]
    text = run(*args, "--exporter", "NO")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].startswith("valid: ")
    assert text.stdout.splitlines()[1].startswith("warning: ")


def test_transfer_check_contract_date(run) -> None:  # type: ignore[no-untyped-def]
    args = ("transfer", "check", "--country", "IN", "--mechanism", "scc_2010",
            "--on", "2022-06-01")
    assert "no contract date" in _json(run(*args, "--json"))["warnings"][0]
    old = _json(run(*args, "--contract-date", "2020-01-15", "--json"))
    assert (old["valid"], old["warnings"]) == (True, [])
    new = _json(run(*args, "--contract-date", "2021-10-01", "--json"))
    assert new["valid"] is False and "2021-09-27" in new["reason"]
