"""Third-country transfers (GDPR Chapter V), judged by the law on the day they happened.

The law is data: ``schemas/legal/eea.json`` (who is not a third country),
``schemas/legal/adequacy.json`` (Art. 45 decisions, incl. the US Data Privacy Framework and
the invalidated Privacy Shield) and ``schemas/legal/mechanisms.json`` (SCCs, BCRs, other
Art. 46 safeguards, Art. 49 derogations). Every row has an inclusive validity window
(``valid_from`` .. ``valid_to``; ``null`` = still in force) and a ``source``. The tables are
loaded once per process.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from ledger.paths import SCHEMAS

LEGAL_TABLES = SCHEMAS / "legal"

#: Mechanism ids that rely on an adequacy decision for the destination (adequacy.json).
ADEQUACY_MECHANISMS = frozenset({"adequacy", "dpf", "privacy_shield", "safe_harbour"})
#: eea.json statuses of countries in the EEA (a ``bridge`` row is not in the EEA, but a
#: transfer to it was not a transfer to a third country in its window).
EEA_STATUSES = frozenset({"eu", "eea_efta"})
#: International organisations with an adequacy decision, keyed by our pseudo country code.
ORGANISATION_ALIASES = {"EPO": "EPO", "EP": "EPO"}


class UnknownMechanismError(ValueError):
    """A mechanism id not in the tables."""


class UnknownDestinationError(ValueError):
    """Not an ISO 3166-1 alpha-2 code (nor an international organisation we know)."""


@dataclass(frozen=True, slots=True)
class Window:
    """One table row: what it allows, from when to when, on what authority."""

    key: str  # country (eea), country + mechanism (adequacy) or mechanism
    valid_from: date
    valid_to: date | None
    source: str
    occasional_only: bool = False
    scope: str | None = None
    status: str | None = None  # eea.json: eu | eea_efta | bridge
    eea_from: date | None = None  # adequacy.json: applies to EEA-EFTA exporters from
    eea_source: str | None = None  # ... on this authority (or why not yet)
    contract_before: date | None = None  # mechanisms.json: from then, older contracts only

    def covers(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    def describe(self) -> str:
        to = self.valid_to.isoformat() if self.valid_to else "open"
        return f"valid {self.valid_from.isoformat()} to {to}; {self.source}"


@dataclass(frozen=True, slots=True)
class TransferVerdict:
    """``valid`` and ``reason`` decide; ``warnings`` are what a reviewer must still check
    (a valid verdict that rests on a fact the ledger does not hold, or on a reading)."""

    valid: bool
    reason: str
    occasional_only: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LegalTables:
    eea: Mapping[str, tuple[Window, ...]]
    adequacy: Mapping[tuple[str, str], tuple[Window, ...]]
    mechanisms: Mapping[str, tuple[Window, ...]]
    iso_countries: frozenset[str]

    @property
    def mechanism_ids(self) -> frozenset[str]:
        return frozenset(self.mechanisms) | ADEQUACY_MECHANISMS | {"none"}


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    for row in rows:
        for field in ("valid_from", "valid_to", "source"):
            if field not in row:
                raise ValueError(f"{path.name}: row {row} lacks {field}")
        if not row["source"]:
            raise ValueError(f"{path.name}: row {row} has an empty source")
    return rows


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _window(key: str, row: dict[str, Any]) -> Window:
    return Window(
        key=key,
        valid_from=date.fromisoformat(row["valid_from"]),
        valid_to=_day(row["valid_to"]),
        source=row["source"],
        occasional_only=bool(row.get("occasional_only", False)),
        scope=row.get("scope"),
        status=row.get("status"),
        eea_from=_day(row.get("eea_incorporated")),
        eea_source=row.get("eea_source"),
        contract_before=_day(row.get("contract_concluded_before")),
    )


def _group(pairs: list[tuple[Any, Window]]) -> dict[Any, tuple[Window, ...]]:
    out: dict[Any, list[Window]] = {}
    for key, w in pairs:
        out.setdefault(key, []).append(w)
    return {k: tuple(sorted(v, key=lambda w: w.valid_from)) for k, v in out.items()}


def _iso_countries() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes, from the IANA tz database's ``iso3166.tab`` (tzdata)."""
    text = (importlib.resources.files("tzdata") / "zoneinfo" / "iso3166.tab").read_text(
        encoding="utf-8"
    )
    return frozenset(
        line.split("\t", 1)[0] for line in text.splitlines() if line and line[0] != "#"
    )


def load_tables(directory: Path = LEGAL_TABLES) -> LegalTables:
    """Read and check the three tables (uncached: use ``tables()`` in production code)."""
    eea = [(r["country"], _window(r["country"], r)) for r in _rows(directory / "eea.json")]
    adequacy = [
        ((r["country"], r["mechanism"]), _window(f"{r['country']}:{r['mechanism']}", r))
        for r in _rows(directory / "adequacy.json")
    ]
    for (_, mech), _w in adequacy:
        if mech not in ADEQUACY_MECHANISMS:
            raise ValueError(f"adequacy.json: unknown mechanism {mech!r}")
    mechs = [
        (r["mechanism"], _window(r["mechanism"], r)) for r in _rows(directory / "mechanisms.json")
    ]
    return LegalTables(_group(eea), _group(adequacy), _group(mechs), _iso_countries())


@cache
def tables() -> LegalTables:
    """The legal tables, loaded once."""
    return load_tables()


def check_destination(country: str) -> str:
    """Upper-cased ISO 3166-1 alpha-2 code (or ``EPO``), else ``UnknownDestinationError``."""
    cc = country.strip().upper()
    if cc in ORGANISATION_ALIASES:
        return ORGANISATION_ALIASES[cc]
    if cc not in tables().iso_countries:
        raise UnknownDestinationError(f"unknown country code: {country!r}")
    return cc


def check_mechanism(mechanism: str) -> str:
    m = mechanism.strip().lower()
    if m not in tables().mechanism_ids:
        known = ", ".join(sorted(tables().mechanism_ids))
        raise UnknownMechanismError(f"unknown mechanism: {mechanism!r} (known: {known})")
    return m


def _eea_window(country: str, on: date) -> Window | None:
    return _covering(tables().eea.get(check_destination(country), ()), on)


def in_eea(country: str, on: date) -> bool:
    """Whether ``country`` was in the EEA (not a third country) on ``on``."""
    w = _eea_window(country, on)
    return w is not None and w.status in EEA_STATUSES


def eea_efta(country: str, on: date) -> bool:
    """Whether ``country`` was an EEA-EFTA State (Iceland, Liechtenstein, Norway) on ``on``:
    there, an adequacy decision applies through its incorporation into the EEA Agreement."""
    w = _eea_window(country, on)
    return w is not None and w.status == "eea_efta"


def _covering(windows: tuple[Window, ...], on: date) -> Window | None:
    return next((w for w in windows if w.covers(on)), None)


def _not_in_force(what: str, windows: tuple[Window, ...], on: date) -> str:
    spans = " | ".join(w.describe() for w in windows)
    return f"{what} not in force on {on.isoformat()} ({spans})"


def eea_incorporation_warning(w: Window, on: date) -> str | None:
    """For an EEA-EFTA exporter: ``None`` when the adequacy decision ``w`` was part of the
    EEA Agreement on ``on``, else the warning that goes with the (still valid) verdict —
    the EEA-EFTA States apply the EU's decisions, but formally only once incorporated."""
    if w.eea_from is not None and w.eea_from <= on:
        return None
    if w.eea_from is not None:
        return (f"{w.key} applies to EEA-EFTA exporters only from {w.eea_from.isoformat()}"
                f" ({w.eea_source}); on {on.isoformat()} it was not yet incorporated into"
                " the EEA Agreement")
    if w.eea_source:
        return (f"{w.key} on {on.isoformat()}: {w.eea_source}; verdict given under EU law"
                " — check the exporter's national position")
    return (f"{w.key}: its incorporation into the EEA Agreement is not recorded in the"
            " table (to be confirmed); verdict given under EU law")


def old_scc_contract_check(
    w: Window, on: date, contract_date: date | None
) -> tuple[bool, str | None]:
    """``(allowed, warning)`` for an instrument that, from ``w.contract_before`` on, covers
    only contracts concluded before that day (the pre-2021 SCCs: Implementing Decision
    (EU) 2021/914, Art. 4(4)). Without a contract date the transfer is allowed with a
    warning: the ledger cannot tell."""
    cut = w.contract_before
    if cut is None or on < cut:
        return True, None
    if contract_date is None:
        return True, (f"{w.key}: from {cut.isoformat()} valid only for contracts concluded"
                      f" before that day; no contract date given — check the contract")
    if contract_date < cut:
        return True, None
    return False, None


def judge_transfer(
    country: str,
    mechanism: str,
    on: date,
    exporter: str | None = None,
    contract_date: date | None = None,
) -> TransferVerdict:
    """Was a transfer to ``country`` on ``mechanism`` lawful on ``on`` (its occurred_at date)?

    - inside the EEA on that day: valid, reason ``"EEA"``, whatever the mechanism; in a
      ``bridge`` window (the United Kingdom, 2021-01-01 to 2021-06-27) valid too: not a
      transfer to a third country;
    - ``none`` to a third country: invalid;
    - ``adequacy`` / ``dpf`` / ``privacy_shield`` / ``safe_harbour``: valid when a decision
      for that country and mechanism covers the day (US adequacy exists only as ``dpf``);
      for an EEA-EFTA ``exporter`` with a warning while the decision is not incorporated
      into the EEA Agreement;
    - other mechanisms: valid when the instrument covers the day — the pre-2021 SCCs from
      2021-09-27 only for a ``contract_date`` before that day (a warning without one); Art.
      49 derogations come back with ``occasional_only=True`` (recurring is a finding).

    ``exporter`` is the exporting establishment's country (the controller's by default,
    ``None`` = not known). Raises ``UnknownDestinationError`` / ``UnknownMechanismError``
    on bad input.
    """
    cc = check_destination(country)
    mech = check_mechanism(mechanism)
    exp = check_destination(exporter) if exporter else None
    t = tables()
    warnings: list[str] = []
    if exp is not None and not in_eea(exp, on):
        warnings.append(f"exporter {exp} is not in the EEA on {on.isoformat()}: judged as a"
                        " transfer by a controller subject to the GDPR (Art. 3(2))")
    efta = exp is not None and eea_efta(exp, on)
    ew = _eea_window(cc, on)
    if ew is not None and ew.status in EEA_STATUSES:
        return TransferVerdict(True, "EEA", warnings=tuple(warnings))
    if ew is not None and ew.status == "bridge":
        if efta:
            warnings.append(f"the bridge binds the EU and {cc}; for an EEA-EFTA exporter it"
                            " applied through national law (e.g. Norway's temporary"
                            " regulation in force from 2021-01-01) — check it")
        return TransferVerdict(True, f"not a transfer to a third country: {ew.source}",
                               warnings=tuple(warnings))
    if mech == "none":
        return TransferVerdict(False, f"no transfer mechanism for third country {cc}",
                               warnings=tuple(warnings))
    if mech in ADEQUACY_MECHANISMS:
        windows = t.adequacy.get((cc, mech), ())
        w = _covering(windows, on)
        if w is not None:
            if efta and (note := eea_incorporation_warning(w, on)) is not None:
                warnings.append(note)
            scope = f" (scope: {w.scope})" if w.scope else ""
            return TransferVerdict(True, f"{mech} for {cc}{scope}: {w.source}",
                                   warnings=tuple(warnings))
        if windows:
            return TransferVerdict(False, _not_in_force(f"{mech} for {cc}", windows, on),
                                   warnings=tuple(warnings))
        if cc == "US" and mech == "adequacy":
            return TransferVerdict(
                False,
                "no general adequacy for US: only organisations certified under the "
                "EU-US Data Privacy Framework (mechanism dpf, from 2023-07-10)",
                warnings=tuple(warnings),
            )
        return TransferVerdict(False, f"no {mech} decision for {cc}", warnings=tuple(warnings))
    windows = t.mechanisms[mech]
    w = _covering(windows, on)
    if w is None:
        return TransferVerdict(False, _not_in_force(mech, windows, on), warnings=tuple(warnings))
    allowed, note = old_scc_contract_check(w, on, contract_date)
    if not allowed:
        assert contract_date is not None and w.contract_before is not None
        return TransferVerdict(
            False,
            f"{mech}: contract concluded on {contract_date.isoformat()}, not before"
            f" {w.contract_before.isoformat()}: from that day the old clauses cover only"
            f" earlier contracts ({w.source})", warnings=tuple(warnings))
    if note:
        warnings.append(note)
    occasional = "; occasional transfers only" if w.occasional_only else ""
    return TransferVerdict(True, f"{mech}: {w.source}{occasional}", w.occasional_only,
                           tuple(warnings))
