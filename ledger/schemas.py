"""JSON Schemas for the envelope and every event type: loaded and compiled once.

``Schemas.check(envelope)`` is on the ingest hot path, so it does the least work possible on
the happy path: one ``is_valid`` call for the envelope, a dict lookup for the type, one
``is_valid`` call for ``data`` and a walk of ``data`` for integral floats (``3.0`` passes a
JSON Schema ``"type": "integer"`` but the ledger carries no floating-point numbers at all).
Errors are only described (``iter_errors``) once something has failed.
"""

from __future__ import annotations

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

_MAX_DETAIL = 300


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


def _describe(validator: Any, instance: Any, prefix: str, hints: dict[str, str]) -> str:
    """A one-line description of the first error: where, and which rule."""
    for err in validator.iter_errors(instance):
        where = _path(prefix, err.instance_path)
        kind = err.kind
        name = type(kind).__name__
        if name == "Enum":
            message = f"{_json(err.instance)} is not one of {_json(list(kind.options))}"
        elif name == "AdditionalProperties":
            field = kind.unexpected[0]
            where = field if where == "envelope" else f"{where}.{field}"
            message = "unknown field (not allowed by the schema"
            message += "; producers' own fields go in data.ext)" if prefix else ")"
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
        return f"{where}: {message}"
    return f"{prefix or 'envelope'}: invalid"  # pragma: no cover - is_valid said otherwise


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
            raise SchemaError(
                "schema_violation", _describe(self._envelope, envelope, "", self._hints)
            )
        type_ = envelope["type"]
        validator = self._validators.get(type_)
        if validator is None:
            raise SchemaError("unknown_type", f"type: {type_!r} is not a known event type")
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
