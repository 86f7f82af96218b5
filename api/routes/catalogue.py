"""The event catalogue: ``GET /v1/schemas`` and ``GET /v1/schemas/{type}``.

What a producer's developer needs to write a valid event without reading the source:
every type with its description and required ``data`` fields, and each type's JSON Schema
(``envelope`` for the envelope's). No API key is needed: the schemas hold no tenant data
and are the same published files as ``schemas/`` and ``/openapi.json`` (docs/producers.md).
An unknown type is a 404 that names the nearest known ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.errors import ApiError, JSONBytes
from api.schemas import Catalogue, Error
from ledger import SPEC
from ledger.schemas import default_schemas

router = APIRouter(tags=["catalogue"])

ENVELOPE = "envelope"


@router.get("/v1/schemas", response_model=Catalogue, summary="Every event type")
def catalogue() -> dict[str, Any]:
    """Types, sorted, with description, required ``data`` fields and the law they record."""
    return {"spec": SPEC, "envelope_url": f"/v1/schemas/{ENVELOPE}",
            "types": [{**entry, "schema_url": f"/v1/schemas/{entry['type']}"}
                      for entry in default_schemas().catalogue()]}


@router.get("/v1/schemas/{type_name}", summary="One type's JSON Schema (of its data)",
            response_class=JSONBytes,
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}},
                             "description": "A JSON Schema (draft 2020-12)."},
                       404: {"model": Error}})
def schema(type_name: Annotated[str, Path(
        description="An event type, or `envelope` for the envelope's schema.")]) -> JSONBytes:
    schemas = default_schemas()
    if type_name == ENVELOPE:
        return JSONBytes(schemas.envelope_schema)
    try:
        return JSONBytes(schemas.schema_for(type_name))
    except KeyError:
        raise ApiError(404, "not_found", schemas.unknown_type_detail(type_name)
                       .replace("type: ", "schema: ", 1)) from None
