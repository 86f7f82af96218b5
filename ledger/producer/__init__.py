"""The producer client: durable outbox, transports, keys (docs/producer-client.md).

Import it as ``from ledger.client import Producer``; the modules:
``outbox`` (the SQLite queue, receipts, dead letters), ``transport`` (HTTP, Kafka intake),
``keys`` (subject-key file, remote data keys), ``producer`` (``Producer``,
``AsyncProducer`` and their errors).
"""
