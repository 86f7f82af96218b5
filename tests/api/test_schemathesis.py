"""Property-based conformance: schemathesis generates requests from /openapi.json for every
operation and checks the answers with all its checks — no 5xx, every status code and
content type documented, every body matching its schema, invalid input refused, valid
input accepted.

One exception, argued: for ``POST /v1/events`` whether an event is good depends on its
signature and on the registry (controllers, producers, revocations), which no JSON
Schema can express; a schema-valid envelope with a made-up signature is *rightly*
rejected. There the positive/negative-data checks are off; every other check stays on.

Every operation is covered and gates, the alert routes and the SSE stream included
(``bounded_stream`` below says how a never-ending response is kept finite).

The app is built at import (schemathesis parametrizes at collection time) around a
fixture ledger in a temporary directory, with two tenants and events in both.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.api.conftest import make_api

_dir = Path(tempfile.mkdtemp(prefix="auditledger-schemathesis-"))
API, _store = make_api(_dir)
atexit.register(shutil.rmtree, _dir, ignore_errors=True)

schema = schemathesis.openapi.from_asgi("/openapi.json", API.client.app)
# Every case is sent with the admin key (below), so schemathesis must not make "invalid"
# cases by leaving the key out: they would arrive with it and be valid. Unknown query
# parameters are ignored by every route (FastAPI's rule, docs/api.md), so a case is not
# invalid for carrying one either.
schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
# 25 examples per operation and phase keep the whole run within about two minutes on the
# shared 2-core machine; the seed is hypothesis' own (a failure prints it to reproduce).
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))

STREAM = "/v1/alerts/stream"
STREAM_IDLE_S = 0.2


def bounded_stream(case) -> None:  # type: ignore[no-untyped-def]
    """The alert stream stays open until the client leaves; the test client reads a body
    to its end, so a generated case without a short ``idle_timeout`` would wait for ever.
    A valid or absent one is lowered to 0.2 s; an invalid one is left for the 422 check."""
    query = dict(case.query or {})
    value = query.get("idle_timeout")
    try:
        valid = value is None or 0 < float(value) <= 3600
    except (TypeError, ValueError):
        valid = False
    if valid:
        query["idle_timeout"] = STREAM_IDLE_S
        case.query = query


@schema.parametrize()
@SETTINGS
def test_api_conforms_to_its_openapi(case) -> None:  # type: ignore[no-untyped-def]
    excluded = []
    if case.method == "POST" and case.path == "/v1/events":
        excluded = [positive_data_acceptance, negative_data_rejection]
    if case.path == STREAM:
        bounded_stream(case)
    case.call_and_validate(headers=API.auth("admin"), excluded_checks=excluded)
