"""Write side of auditledger: envelopes, signatures, ingest, the log of record, Merkle proofs.

This package must never import the read side (``projections``, ``api``): the log of record
has to stay correct even when a projection or the HTTP layer is broken.
"""

SPEC = "auditledger/1"
