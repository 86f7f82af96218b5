"""JSON Schemas for the envelope and every event type: loaded and compiled once.

``Schemas.check(envelope)`` is on the ingest hot path, so it does the least work possible on
the happy path: one ``is_valid`` call for the envelope, a dict lookup for the type, one
``is_valid`` call for ``data`` and a walk of ``data`` for integral floats (``3.0`` passes a
JSON Schema ``"type": "integer"`` but the ledger carries no floating-point numbers at all).
Errors are only described (``iter_errors``) once something has failed, and then all of
them at once (a missing field and an unknown one in one answer, a producer's developer
fixes both in one round); an unknown type names the nearest known ones. The codes stay
``schema_violation`` / ``unknown_type``; only the detail says more.
"""

from __future__ import annotations

import difflib
import functools
import pathlib
from typing import Any

import jsonschema_rs
import orjson

from ledger import paths
from ledger.clock import date_problem, time_problem
from ledger.codes import CodedError
from ledger.strictjson import DEPTH_DETAIL, MAX_DEPTH

__all__ = ["SchemaError", "Schemas", "default_schemas"]

_MAX_DETAIL = 300  # one error's message
_MAX_ERRORS = 20  # errors listed in one detail; the rest are counted


class SchemaError(CodedError):
    """An envelope was rejected by its schemas.

    ``code`` is ``"schema_violation"`` or ``"unknown_type"``; ``detail`` names the field and
    the rule, e.g. ``data.risk: "medium" is not one of "unlikely", "risk" or "high"``.
    """


# "date-time" and "date" mean the ledger's one definition of a valid time
# (ledger.clock.time_problem / date_problem), not the library's: RFC 3339 alone lets
# through leap seconds, year 0 and offsets that overflow on conversion to UTC.
_FORMATS = {
    "date-time": lambda value: time_problem(value) is None,
    "date": lambda value: date_problem(value) is None,
}
_PROBLEMS = {"date-time": time_problem, "date": date_problem}


def _compile(schema: dict) -> Any:
    return jsonschema_rs.Draft202012Validator(schema, formats=_FORMATS, validate_formats=True)


def _path(prefix: str, instance_path: Any) -> str:
    out = prefix
    for part in instance_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or "envelope"


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _messages(validator: Any, instance: Any, prefix: str,
              hints: dict[str, str]) -> list[str]:
    """Every error of ``instance``, one ``where: rule`` line each, in a stable order."""
    found: list[str] = []
    for err in validator.iter_errors(instance):
        where = _path(prefix, err.instance_path)
        kind = err.kind
        name = type(kind).__name__
        if name == "AdditionalProperties":
            message = "unknown field (not allowed by the schema"
            message += "; producers' own fields go in data.ext)" if prefix else ")"
            for field in kind.unexpected:
                found.append(f"{field if where == 'envelope' else f'{where}.{field}'}: "
                             f"{message}")
            continue
        if name == "Enum":
            message = f"{_json(err.instance)} is not one of {_json(list(kind.options))}"
        elif name == "Pattern" and kind.pattern in hints:
            message = f"{_json(err.instance)} is not {hints[kind.pattern]}"
        elif name == "Format" and kind.format in _PROBLEMS:
            why = _PROBLEMS[kind.format](err.instance)
            noun = "time" if kind.format == "date-time" else "date"
            message = f"{_json(err.instance)} is not a valid {noun}: {why}"
        else:
            message = err.message
        if len(message) > _MAX_DETAIL:
            message = message[:_MAX_DETAIL] + "…"
        found.append(f"{where}: {message}")
    return list(dict.fromkeys(found))  # one line per distinct error


def _join(errors: list[str]) -> str:
    """All errors in one detail, ``; ``-separated; past ``_MAX_ERRORS``, a count."""
    shown = errors[:_MAX_ERRORS]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; and {more} more error(s)" if more else "")


def _describe(validator: Any, instance: Any, prefix: str, hints: dict[str, str]) -> str:
    """Every error of ``instance`` in one line: where, and which rule."""
    errors = _messages(validator, instance, prefix, hints)
    return _join(errors) if errors else f"{prefix or 'envelope'}: invalid"


def _pattern_hints(schema: dict, hints: dict[str, str]) -> None:
    """Collect ``pattern -> "a <x-hint>"`` from schema nodes that carry an ``x-hint``."""
    if isinstance(schema, dict):
        if "pattern" in schema and "x-hint" in schema:
            hints[schema["pattern"]] = schema["x-hint"]
        for v in schema.values():
            _pattern_hints(v, hints)
    elif isinstance(schema, list):
        for v in schema:
            _pattern_hints(v, hints)


def _find_float(value: Any, path: str, depth: int = 2) -> str | None:
    """Path of the first float in ``value`` (lists and dicts walked), or None. The walk
    also bounds nesting (``data`` is level 2 of the envelope): deeper than
    ``MAX_DEPTH`` raises :class:`SchemaError`, before anything canonicalises it."""
    if depth > MAX_DEPTH and isinstance(value, dict | list):
        raise SchemaError("schema_violation", f"{path}: {DEPTH_DETAIL}")
    if isinstance(value, dict):
        for k, v in value.items():
            if type(v) is str:
                continue
            found = _find_float(v, f"{path}.{k}", depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if type(v) is str:
                continue
            found = _find_float(v, f"{path}[{i}]", depth + 1)
            if found:
                return found
    elif isinstance(value, float):
        return path
    return None


class Schemas:
    """The envelope schema and one data schema per event type, compiled."""

    def __init__(self, root: pathlib.Path = paths.SCHEMAS) -> None:
        root = pathlib.Path(root)
        self.root = root
        self._envelope_raw = orjson.loads((root / "envelope.json").read_bytes())
        self._envelope = _compile(self._envelope_raw)
        self._hints: dict[str, str] = {}
        _pattern_hints(self._envelope_raw, self._hints)
        raw: dict[str, dict] = {}
        compiled: dict[str, Any] = {}
        for path in sorted((root / "events").glob("*.json")):
            type_ = path.name[: -len(".json")]
            schema = orjson.loads(path.read_bytes())
            raw[type_] = schema
            compiled[type_] = _compile(schema)
            _pattern_hints(schema, self._hints)
        if not raw:
            raise FileNotFoundError(f"no event schemas under {root / 'events'}")
        self._raw = raw
        self._validators = compiled
        self.types: frozenset[str] = frozenset(raw)

    def check(self, envelope: dict) -> None:
        """Raise :class:`SchemaError` unless ``envelope`` is valid for its schemas."""
        if not self._envelope.is_valid(envelope):
            errors = _messages(self._envelope, envelope, "", self._hints)
            # the data's errors too, when its type can be known: everything in one answer
            type_ = envelope.get("type") if isinstance(envelope, dict) else None
            data = envelope.get("data") if isinstance(envelope, dict) else None
            validator = self._validators.get(type_) if isinstance(type_, str) else None
            if validator is not None and isinstance(data, dict):
                errors += _messages(validator, data, "data", self._hints)
            raise SchemaError("schema_violation",
                              _join(errors) if errors else "envelope: invalid")
        type_ = envelope["type"]
        validator = self._validators.get(type_)
        if validator is None:
            raise SchemaError("unknown_type", self.unknown_type_detail(type_))
        data = envelope["data"]
        if not validator.is_valid(data):
            raise SchemaError("schema_violation", _describe(validator, data, "data", self._hints))
        where = _find_float(data, "data")
        if where is not None:
            raise SchemaError(
                "schema_violation",
                f"{where}: floating-point numbers are not allowed; "
                "use an integer or a decimal string",
            )

    def suggest(self, type_: str, n: int = 3) -> list[str]:
        """The known types nearest to ``type_`` (difflib), best first; may be empty."""
        return difflib.get_close_matches(type_, sorted(self.types), n=n, cutoff=0.6)

    def unknown_type_detail(self, type_: str) -> str:
        near = self.suggest(type_)
        names = [repr(t) for t in near]
        listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
        hint = (f"did you mean {listed}?" if near else
                "see GET /v1/schemas or auditledger schema list")
        return f"type: {type_!r} is not a known event type; {hint}"

    def catalogue(self) -> list[dict[str, Any]]:
        """One entry per type, sorted: ``{type, description, required, source}`` — what
        ``GET /v1/schemas`` and ``auditledger schema list`` show."""
        return [{"type": t, "description": self._raw[t].get("description", ""),
                 "required": list(self._raw[t].get("required", [])),
                 "source": self._raw[t].get("x-source")}
                for t in sorted(self.types)]

    def schema_for(self, type_: str) -> dict:
        """The raw schema of ``type_``'s ``data`` (KeyError if unknown)."""
        return self._raw[type_]

    @property
    def envelope_schema(self) -> dict:
        return self._envelope_raw


@functools.cache
def default_schemas() -> Schemas:
    """The process-wide instance, compiled from ``ledger.paths.SCHEMAS``."""
    return Schemas()
