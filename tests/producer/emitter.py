"""A business process for the crash tests: emits N events through a ``Producer`` and
prints each ``event_id`` once ``emit`` has returned (the client has accepted it), then
waits to be killed. ``python -m tests.producer.emitter '<json options>'``."""

from __future__ import annotations

import sys
import threading

import orjson

from ledger.client import Producer
from tests.conftest import CONTROLLER

CONSENT = {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}


def main() -> None:
    opts = orjson.loads(sys.argv[1])
    producer = Producer(producer="crm", key=opts["key"], outbox=opts["outbox"],
                        controller=CONTROLLER, url=opts.get("url"),
                        api_key=opts.get("api_key"), kafka=opts.get("kafka"),
                        topic=opts.get("topic", "auditledger.intake.v1"),
                        subject_key=b"k" * 32, batch_size=opts.get("batch", 20))
    for i in range(opts["count"]):
        event_id = producer.emit("consent.given", CONSENT, identifier=f"user{i}@example.org")
        print(event_id, flush=True)
    print("done", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
