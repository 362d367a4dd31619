"""LedgerFS cryptographic attestation (DESIGN section 5).

`proofs.core` is the pure-Python core (stdlib and `cryptography` only, never Django) so an
auditor can import it standalone; Django adapters live outside it and depend on it.
"""
