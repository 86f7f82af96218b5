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
ADEQUACY_MECHANISMS = frozenset({"adequacy", "dpf", "privacy_shield"})
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

    def covers(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)

    def describe(self) -> str:
        to = self.valid_to.isoformat() if self.valid_to else "open"
        return f"valid {self.valid_from.isoformat()} to {to}; {self.source}"


@dataclass(frozen=True, slots=True)
class TransferVerdict:
    valid: bool
    reason: str
    occasional_only: bool = False


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


def _window(key: str, row: dict[str, Any]) -> Window:
    return Window(
        key=key,
        valid_from=date.fromisoformat(row["valid_from"]),
        valid_to=date.fromisoformat(row["valid_to"]) if row["valid_to"] else None,
        source=row["source"],
        occasional_only=bool(row.get("occasional_only", False)),
        scope=row.get("scope"),
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


def in_eea(country: str, on: date) -> bool:
    """Whether ``country`` was in the EEA (not a third country) on ``on``."""
    return any(w.covers(on) for w in tables().eea.get(check_destination(country), ()))


def _covering(windows: tuple[Window, ...], on: date) -> Window | None:
    return next((w for w in windows if w.covers(on)), None)


def _not_in_force(what: str, windows: tuple[Window, ...], on: date) -> str:
    spans = " | ".join(w.describe() for w in windows)
    return f"{what} not in force on {on.isoformat()} ({spans})"


def judge_transfer(country: str, mechanism: str, on: date) -> TransferVerdict:
    """Was a transfer to ``country`` on ``mechanism`` lawful on ``on`` (its occurred_at date)?

    - inside the EEA on that day: valid, reason ``"EEA"``, whatever the mechanism;
    - ``none`` to a third country: invalid;
    - ``adequacy`` / ``dpf`` / ``privacy_shield``: valid when a decision for that country and
      mechanism covers the day (US adequacy exists only as ``dpf``);
    - other mechanisms: valid when the instrument covers the day; Art. 49 derogations come
      back with ``occasional_only=True`` (a recurring transfer on them is a finding).

    Raises ``UnknownDestinationError`` / ``UnknownMechanismError`` on bad input.
    """
    cc = check_destination(country)
    mech = check_mechanism(mechanism)
    t = tables()
    if in_eea(cc, on):
        return TransferVerdict(True, "EEA")
    if mech == "none":
        return TransferVerdict(False, f"no transfer mechanism for third country {cc}")
    if mech in ADEQUACY_MECHANISMS:
        windows = t.adequacy.get((cc, mech), ())
        w = _covering(windows, on)
        if w is not None:
            scope = f" (scope: {w.scope})" if w.scope else ""
            return TransferVerdict(True, f"{mech} for {cc}{scope}: {w.source}")
        if windows:
            return TransferVerdict(False, _not_in_force(f"{mech} for {cc}", windows, on))
        if cc == "US" and mech == "adequacy":
            return TransferVerdict(
                False,
                "no general adequacy for US: only organisations certified under the "
                "EU-US Data Privacy Framework (mechanism dpf, from 2023-07-10)",
            )
        return TransferVerdict(False, f"no {mech} decision for {cc}")
    windows = t.mechanisms[mech]
    w = _covering(windows, on)
    if w is None:
        return TransferVerdict(False, _not_in_force(mech, windows, on))
    note = "; occasional transfers only" if w.occasional_only else ""
    return TransferVerdict(True, f"{mech}: {w.source}{note}", w.occasional_only)
