"""``GET …/checkpoint/cosigned``: the newest checkpoint that carries cosignatures, its note
with the cosignature lines appended (cosignatures made here by a Python cosigner)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import open_checkpoint
from ledger.witness import check_quorum, cosign, cosigner_key, split_note
from tests.api.conftest import Api, api  # noqa: F401 - the fixture
from tests.conftest import CONTROLLER


def test_cosigned_checkpoint_route(api: Api) -> None:  # noqa: F811
    url = f"/v1/controllers/{CONTROLLER}/checkpoint/cosigned"
    r = api.get(url)
    assert r.status_code == 404 and r.json()["code"] == "no_cosigned_checkpoint"
    log = api.world.ledger.log
    cp = log.latest_checkpoint(CONTROLLER)
    key = Ed25519PrivateKey.generate()
    vkey = cosigner_key("w.example/1", key.public_key())
    line = cosign(split_note(cp.note)[0], "w.example/1", key, 1_764_000_000)
    log.add_cosignatures(CONTROLLER, cp.size, [line])
    api.world.ledger.submit([api.event()])  # a newer, not yet cosigned checkpoint
    api.world.ledger.flush()
    doc = api.get(url).json()
    assert doc["size"] == cp.size < log.latest_checkpoint(CONTROLLER).size
    assert doc["note"] == cp.note + line and doc["cosignatures"] == [line]
    assert open_checkpoint(doc["note"], [doc["log_key"]]).size == cp.size
    assert [c.witness for c in check_quorum(doc["note"], [vkey], 1)] == ["w.example/1"]
    assert api.get(url, who="auditor_b").status_code == 404  # another tenant's log
