"""The DESIGN section 5 JSON shapes of inclusion and consistency proofs: build, read, verify.

Invariant: readers are strict (exact key set, ints that are not bools, 64-digit lowercase hex),
so a proof has one JSON spelling, and `verify_*_proof` always checks the proof against a root
the caller trusts (from a verified checkpoint), never only against the root the proof claims.
"""

from collections.abc import Mapping, Sequence

from proofs.core.encoding import decode_hash_hex
from proofs.core.errors import MalformedProof, RootMismatch
from proofs.core.rfc9162 import verify_consistency, verify_inclusion

INCLUSION_KEYS = frozenset({"leaf_index", "tree_size", "leaf_hash", "path", "root_hash"})
CONSISTENCY_KEYS = frozenset({"first_size", "second_size", "first_root", "second_root", "path"})


def inclusion_proof_json(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes], root_hash: bytes
) -> dict[str, object]:
    return {
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "leaf_hash": leaf_hash.hex(),
        "path": [p.hex() for p in path],
        "root_hash": root_hash.hex(),
    }


def consistency_proof_json(
    *,
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    path: Sequence[bytes],
) -> dict[str, object]:
    return {
        "first_size": first_size,
        "second_size": second_size,
        "first_root": first_root.hex(),
        "second_root": second_root.hex(),
        "path": [p.hex() for p in path],
    }


def require_keys(obj: object, keys: frozenset[str]) -> Mapping[str, object]:
    """`obj` as a mapping with exactly `keys`: unknown fields are refused, not ignored."""
    if not isinstance(obj, Mapping) or set(obj) != keys:
        raise MalformedProof(f"expected an object with exactly the keys {sorted(keys)}")
    return obj


def read_count(obj: Mapping[str, object], key: str) -> int:
    """A non-negative integer field (JSON true/false are not integers here)."""
    value = obj[key]
    if type(value) is not int or value < 0:
        raise MalformedProof(f"{key} must be a non-negative integer")
    return value


def _decode_hash(value: object, what: str) -> bytes:
    try:
        return decode_hash_hex(value)  # type: ignore[arg-type]  # it rejects non-strings
    except ValueError as err:
        raise MalformedProof(f"{what}: {err}") from err


def read_hash(obj: Mapping[str, object], key: str) -> bytes:
    """A 32-byte hash field written as 64 lowercase hex digits."""
    return _decode_hash(obj[key], key)


def read_list(obj: Mapping[str, object], key: str) -> list[object]:
    values = obj[key]
    if not isinstance(values, list):
        raise MalformedProof(f"{key} must be a list")
    return values


def read_hash_list(obj: Mapping[str, object], key: str) -> list[bytes]:
    return [_decode_hash(value, f"{key}[{i}]") for i, value in enumerate(read_list(obj, key))]


def _require_claimed_root(claimed: bytes, trusted: bytes) -> None:
    if claimed != trusted:
        raise RootMismatch(trusted, claimed)


def verify_inclusion_proof(proof: object, root_hash: bytes) -> None:
    """Verify an inclusion proof dict against the trusted `root_hash`; raises `ProofError`."""
    fields = require_keys(proof, INCLUSION_KEYS)
    leaf_index = read_count(fields, "leaf_index")
    tree_size = read_count(fields, "tree_size")
    leaf_hash = read_hash(fields, "leaf_hash")
    path = read_hash_list(fields, "path")
    claimed_root = read_hash(fields, "root_hash")
    verify_inclusion(leaf_hash, leaf_index, tree_size, path, root_hash)
    _require_claimed_root(claimed_root, root_hash)


def verify_consistency_proof(proof: object, first_root: bytes, second_root: bytes) -> None:
    """Verify a consistency proof dict between two trusted roots; raises `ProofError`."""
    fields = require_keys(proof, CONSISTENCY_KEYS)
    first_size = read_count(fields, "first_size")
    second_size = read_count(fields, "second_size")
    claimed_first = read_hash(fields, "first_root")
    claimed_second = read_hash(fields, "second_root")
    path = read_hash_list(fields, "path")
    verify_consistency(first_size, second_size, first_root, second_root, path)
    _require_claimed_root(claimed_first, first_root)
    _require_claimed_root(claimed_second, second_root)
