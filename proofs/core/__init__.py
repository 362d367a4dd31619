"""Pure cryptographic core: no Django, only the standard library and `cryptography`.

- `rfc9162`: RFC 9162 hashing, proofs from stored perfect nodes, verification.
- `tree`: append-only Merkle tree over a `NodeStore` port; DESIGN section 5 proof JSON.
- `proof_json`: strict build/read/verify of the inclusion and consistency JSON shapes.
- `sumtree`: Merkle-sum tree over account states and balance proofs.
- `note`: C2SP signed notes with Ed25519 (Go sumdb/note compatible keys).
- `checkpoint`: C2SP tlog-checkpoint bodies with LedgerFS extension lines.
- `encoding`: canonical hex, base64 and decimal; `errors`: the `ProofError` hierarchy.
"""
