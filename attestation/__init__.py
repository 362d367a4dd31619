"""Attestation: sealing the ledger's event log into signed checkpoints (DESIGN section 5).

The sealer (`sealer`, `store`) integrates committed events into each shard's Merkle trees and
signs a C2SP checkpoint per block; `keys` holds the signing keys, `sinks` the external digest
storage, `services`/`selectors` the Django-facing actions and reads, `api` the HTTP surface,
`tasks` the Celery tasks, and `runtime` decides which process seals which shard.
"""
