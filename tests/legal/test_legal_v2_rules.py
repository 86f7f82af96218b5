"""The rules of issue #15 as pure functions: every worked example of docs/legal-rules.md
("Findings") and hypothesis properties where the rule has one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.legal.breach import (
    AWARENESS_WINDOW,
    BreachState,
    awareness,
    awareness_delay,
    breach_state,
    public_communication_missing,
    subjects_not_communicated,
)
from projections.legal.rights import (
    RefusalVerdict,
    clock_start,
    identity_request_delay,
    judge_refusal,
    period_end,
    rights_deadlines,
)
from projections.legal.transfers import (
    eea_efta,
    in_eea,
    judge_transfer,
    tables,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
INSTANTS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1),
                        timezones=st.just(UTC))

# --- breaches: awareness (Art. 33(2)) --------------------------------------------------------


def test_aware_is_the_earlier_of_own_and_processor() -> None:
    # worked example: the processor told the controller on Monday 09:00, the controller
    # recorded its own awareness on Wednesday: the 72 hours run from Monday 09:00.
    assert awareness(T0 + timedelta(days=2), T0) == T0
    assert awareness(T0, T0 + timedelta(days=2)) == T0
    assert awareness(None, T0) == T0
    assert awareness(T0, None) == T0
    assert awareness(None, None) is None


@given(a=INSTANTS, b=INSTANTS)
def test_awareness_is_never_after_either_notice(a: datetime, b: datetime) -> None:
    got = awareness(a, b)
    assert got is not None and got <= a and got <= b and got in (a, b)


def test_awareness_requires_aware_datetimes() -> None:
    with pytest.raises(ValueError):
        awareness(datetime(2026, 1, 1), None)


def test_awareness_delay_worked_example() -> None:
    # detected Monday 09:00, nothing recorded: Thursday 09:00 is still in the window,
    # one second later it is a finding showing the gap.
    assert awareness_delay(T0, T0 + AWARENESS_WINDOW) is None
    gap = awareness_delay(T0, T0 + AWARENESS_WINDOW + timedelta(seconds=1))
    assert gap == timedelta(hours=72, seconds=1)
    assert awareness_delay(T0, T0 - timedelta(hours=1)) is None  # aware before detection


@given(start=INSTANTS, hours=st.integers(min_value=0, max_value=500))
def test_awareness_delay_iff_more_than_72h(start: datetime, hours: int) -> None:
    got = awareness_delay(start, start + timedelta(hours=hours))
    assert (got is not None) is (hours > 72)


# --- breaches: Art. 34 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "exemption", "public", "individual", "closed", "missing"),
    [
        ("high", "c", False, False, True, True),  # worked example: closed under (c), nothing
        ("high", "c", True, False, True, False),  # the public communication was made
        ("high", "c", False, True, True, False),  # told individually after all
        ("high", "c", False, False, False, False),  # still open: not yet a finding
        ("high", "a", False, False, True, False),  # (a) needs no public communication
        ("risk", "c", False, False, True, False),  # not high risk: no Art. 34 duty
    ],
)
def test_public_communication_missing(risk, exemption, public, individual, closed,  # type: ignore[no-untyped-def]
                                      missing) -> None:
    assert public_communication_missing(risk, exemption, public, individual, closed) is missing


@pytest.mark.parametrize(
    ("risk", "exemption", "individual", "closed", "missing"),
    [
        ("high", None, False, True, True),  # worked example: neither communication nor exemption
        ("high", None, True, True, False),
        ("high", "b", False, True, False),
        ("high", None, False, False, False),
        ("unlikely", None, False, True, False),
        (None, None, False, True, False),  # unassessed: Art. 34 needs a high-risk finding
    ],
)
def test_subjects_not_communicated(risk, exemption, individual, closed, missing) -> None:  # type: ignore[no-untyped-def]
    assert subjects_not_communicated(risk, exemption, individual, closed) is missing


@given(notified=st.one_of(st.none(), st.integers(min_value=0, max_value=1000)),
       reasons=st.booleans(), now=st.integers(min_value=0, max_value=2000))
def test_unlikely_is_never_late(notified: int | None, reasons: bool, now: int) -> None:
    at = None if notified is None else T0 + timedelta(hours=notified)
    state = breach_state(T0, "unlikely", at, reasons, T0 + timedelta(hours=now))
    assert state is BreachState.NOT_REQUIRED


# --- rights requests ---------------------------------------------------------------------------

R = date(2026, 1, 5)  # Monday; due 2026-02-05 in Norway
DUE = period_end(R, 1, "NO")


def test_identity_request_after_due_restarts_nothing() -> None:
    assert period_end(date(2026, 1, 5), 1, "NO") == date(2026, 2, 5)
    # worked example: asked on the due date itself -> still restarts from verification
    assert clock_start(R, "restart_on_identity", DUE, date(2026, 2, 9), due=DUE) == date(
        2026, 2, 9)
    # asked the day after the due date: the request is already overdue, receipt stands
    late = DUE + timedelta(days=1)
    assert clock_start(R, "restart_on_identity", late, late + timedelta(days=3), due=DUE) == R
    assert clock_start(R, "restart_on_identity", late, None, due=DUE) == R  # not "waiting"
    assert clock_start(R, "strict", late, None, due=DUE) == R


@given(req=st.integers(min_value=0, max_value=120), ver=st.integers(min_value=0, max_value=120))
def test_restart_never_starts_after_an_overdue_request(req: int, ver: int) -> None:
    asked, verified = R + timedelta(days=req), R + timedelta(days=req + ver)
    start = clock_start(R, "restart_on_identity", asked, verified, due=DUE)
    assert start is not None
    if asked > DUE:
        assert start == R
    else:
        assert start == verified


def test_identity_request_delay_worked_example() -> None:
    assert identity_request_delay(R, R + timedelta(days=10)) is None  # default 10 days
    assert identity_request_delay(R, R + timedelta(days=11)) == 11
    assert identity_request_delay(R, R + timedelta(days=11), within_days=14) is None
    with pytest.raises(ValueError):
        identity_request_delay(R, R, within_days=0)


@pytest.mark.parametrize(
    ("refused", "extended", "verdict"),
    [
        (date(2026, 2, 5), False, RefusalVerdict.IN_TIME),  # within one month of receipt
        (date(2026, 2, 6), False, RefusalVerdict.LATE),
        (date(2026, 2, 6), True, RefusalVerdict.AFTER_EXTENSION),  # contested: lower severity
        (date(2026, 4, 7), True, RefusalVerdict.AFTER_EXTENSION),  # extended due 2026-04-07
        (date(2026, 4, 8), True, RefusalVerdict.LATE),
    ],
)
def test_judge_refusal(refused: date, extended: bool, verdict: RefusalVerdict) -> None:
    dl = rights_deadlines(R, "NO", extended=extended)
    # 5 April 2026 is Easter Sunday, 6 April Easter Monday (a Norwegian public holiday)
    assert dl.extended_due == date(2026, 4, 7)
    assert judge_refusal(refused, dl) is verdict


def test_refusal_is_judged_against_one_month_even_with_a_promise() -> None:
    dl = rights_deadlines(R, "NO", promise_days=60, extended=True)
    assert judge_refusal(date(2026, 2, 20), dl) is RefusalVerdict.AFTER_EXTENSION


# --- transfers ---------------------------------------------------------------------------------


def test_every_adequacy_row_keeps_its_source_and_eea_fields() -> None:
    for windows in tables().adequacy.values():
        for w in windows:
            assert w.source.strip()
            assert w.eea_from is None or w.eea_source  # a date always comes with its source


def test_brazil() -> None:
    v = judge_transfer("BR", "adequacy", date(2026, 6, 1))
    assert v.valid and "2026/179" in v.reason and v.warnings == ()
    assert not judge_transfer("BR", "adequacy", date(2026, 1, 25)).valid


def test_eea_efta_exporter_warned_while_not_incorporated() -> None:
    for exporter in ("NO", "IS", "LI"):
        v = judge_transfer("BR", "adequacy", date(2026, 6, 1), exporter=exporter)
        assert v.valid
        assert len(v.warnings) == 1 and "not yet incorporated" in v.warnings[0]
        assert "2026-05-06" in v.warnings[0]
    assert judge_transfer("BR", "adequacy", date(2026, 6, 1), exporter="DE").warnings == ()


def test_eea_efta_exporter_incorporation_date() -> None:
    # Privacy Shield: EEA Joint Committee Decision No 144/2017, in effect from 2017-07-08
    before = judge_transfer("US", "privacy_shield", date(2017, 7, 7), exporter="NO")
    assert before.valid and "2017-07-08" in before.warnings[0]
    after = judge_transfer("US", "privacy_shield", date(2017, 7, 8), exporter="NO")
    assert after.valid and after.warnings == ()
    # a decision whose incorporation is not recorded says so, never pretends
    jp = judge_transfer("JP", "adequacy", date(2026, 1, 1), exporter="NO")
    assert jp.valid and "to be confirmed" in jp.warnings[0]


def test_exporter_outside_the_eea_is_warned() -> None:
    v = judge_transfer("IN", "scc_2021", date(2026, 1, 1), exporter="CH")
    assert v.valid and "Art. 3(2)" in v.warnings[0]
    assert eea_efta("NO", date(2026, 1, 1)) and not eea_efta("DE", date(2026, 1, 1))


def test_uk_bridge() -> None:
    assert not in_eea("GB", date(2021, 3, 1))  # not in the EEA ...
    v = judge_transfer("GB", "none", date(2021, 3, 1))
    assert v.valid and "FINPROV.10A" in v.reason  # ... but not a third country either
    assert not judge_transfer("GB", "none", date(2021, 6, 28)).valid
    assert "warnings" not in v.reason
    efta = judge_transfer("GB", "none", date(2021, 3, 1), exporter="NO")
    assert efta.valid and "national law" in efta.warnings[0]


def test_uk_scope_is_the_december_2025_renewal() -> None:
    old = judge_transfer("GB", "adequacy", date(2024, 1, 1))
    assert "immigration" in old.reason and "does not cover" in old.reason
    new = judge_transfer("GB", "adequacy", date(2026, 1, 1))
    assert "19 December 2025" in new.reason and "no longer excludes" in new.reason
    assert "Data (Use and Access) Act 2025" in new.reason


def test_safe_harbour() -> None:
    assert judge_transfer("US", "safe_harbour", date(2015, 10, 5)).valid
    v = judge_transfer("US", "safe_harbour", date(2015, 10, 6))
    assert not v.valid and "C-362/14" in v.reason


@pytest.mark.parametrize(
    ("on", "contract", "valid", "warned"),
    [
        (date(2021, 9, 26), None, True, False),  # before the cut: any contract
        (date(2021, 9, 27), None, True, True),  # from the cut: contract date needed
        (date(2021, 9, 27), date(2021, 9, 26), True, False),
        (date(2021, 9, 27), date(2021, 9, 27), False, False),  # concluded on the day: too late
        (date(2022, 12, 27), date(2019, 1, 1), True, False),  # last day
        (date(2022, 12, 28), date(2019, 1, 1), False, False),  # no transfer after 27 Dec 2022
    ],
)
def test_old_sccs_and_the_contract_date(on: date, contract: date | None, valid: bool,
                                        warned: bool) -> None:
    v = judge_transfer("IN", "scc_2010", on, contract_date=contract)
    assert v.valid is valid
    assert bool(v.warnings) is warned
    if warned:
        assert "no contract date" in v.warnings[0]
