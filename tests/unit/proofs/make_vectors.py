"""Generate the language-neutral proof test vectors in `vectors/` (run from the repo root):

    PYTHONPATH=. .venv/bin/python tests/unit/proofs/make_vectors.py

Each file is named after its mutation and holds {"description", "proof", trusted root(s),
"want_error"}: the proof in its DESIGN section 5 JSON shape, the root(s) a verifier trusts
(from a checkpoint), and null if the proof must verify or else the error code our verifier
raises. Other implementations should only check that a non-null case fails.
Generation is deterministic, so `test_proofs_vectors.py` regenerates and compares.
"""

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from proofs.core.rfc9162 import empty_root, leaf_hash
from proofs.core.sumtree import SumTree
from proofs.core.tree import MerkleTree

VECTORS_DIR = Path(__file__).parent / "vectors"
Vector = dict[str, object]
Mutation = Callable[[Vector], None]

# Same leaves as the RFC 6962 test data used by Certificate Transparency and transparency-dev.
LEAF_DATA = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
SOME_HASH = hashlib.sha256(b"not the right hash").hexdigest()


def _flip_bit_4(hex_hash: str) -> str:
    """Flip bit 4 (value 0x10) of the first byte."""
    return f"{int(hex_hash[:2], 16) ^ 0x10:02x}{hex_hash[2:]}"


def _set(*keys: str | int, value: object) -> Mutation:
    def mutate(vector: Vector) -> None:
        target = vector
        for key in keys[:-1]:
            target = target[key]  # type: ignore[index]
        target[keys[-1]] = value  # type: ignore[index]

    return mutate


def _edit_path(edit: Callable[[list[object]], list[object]]) -> Mutation:
    def mutate(vector: Vector) -> None:
        proof = vector["proof"]
        proof["path"] = edit(proof["path"])  # type: ignore[index]

    return mutate


def _flip_path(index: int, key: str | None = None) -> Mutation:
    def mutate(vector: Vector) -> None:
        path = vector["proof"]["path"]  # type: ignore[index]
        if key is None:
            path[index] = _flip_bit_4(path[index])
        else:
            path[index][key] = _flip_bit_4(path[index][key])

    return mutate


def _expand(
    prefix: str, happy: Vector, mutations: dict[str, tuple[Mutation, str]]
) -> dict[str, Vector]:
    vectors = {f"{prefix}-happy-path": {**happy, "want_error": None}}
    for name, (mutate, code) in mutations.items():
        vector = copy.deepcopy(happy)
        mutate(vector)
        description = f"{happy['description']}, mutated: {name}"
        vectors[f"{prefix}-{name}"] = {**vector, "description": description, "want_error": code}
    return vectors


def inclusion_vectors(tree: MerkleTree) -> dict[str, Vector]:
    # Leaf 5 of 7: a tree whose right edge is not perfect.
    proof = tree.inclusion_proof(5, 7)
    happy: Vector = {
        "description": "inclusion of leaf 5 in the 7-leaf RFC 6962 test tree",
        "proof": proof,
        "trusted_root": proof["root_hash"],
    }
    path_length = len(proof["path"])  # type: ignore[arg-type]
    mutations: dict[str, tuple[Mutation, str]] = {
        "leaf-index@-1": (_set("proof", "leaf_index", value=4), "root_mismatch"),
        "leaf-index@+1": (_set("proof", "leaf_index", value=6), "malformed_proof"),
        "leaf-index@tree-size": (_set("proof", "leaf_index", value=7), "precondition_failed"),
        "tree-size@x2": (_set("proof", "tree_size", value=14), "malformed_proof"),
        "tree-size@half": (_set("proof", "tree_size", value=3), "precondition_failed"),
        "wrong-leaf-hash": (_set("proof", "leaf_hash", value=SOME_HASH), "root_mismatch"),
        "wrong-trusted-root": (_set("trusted_root", value=empty_root().hex()), "root_mismatch"),
        "claimed-root-differs": (_set("proof", "root_hash", value=SOME_HASH), "root_mismatch"),
        "truncated-path": (_edit_path(lambda p: p[:-1]), "malformed_proof"),
        "extended-path": (_edit_path(lambda p: [*p, SOME_HASH]), "malformed_proof"),
        "prepended-path": (_edit_path(lambda p: [SOME_HASH, *p]), "malformed_proof"),
        "uppercase-hex-path@0": (_edit_path(lambda p: [p[0].upper(), *p[1:]]), "malformed_proof"),
    }
    for i in range(path_length):
        mutations[f"modified-path@{i}-bit@4"] = (_flip_path(i), "root_mismatch")
    return _expand("inclusion", happy, mutations)


def consistency_vectors(tree: MerkleTree) -> dict[str, Vector]:
    proof = tree.consistency_proof(3, 7)
    happy: Vector = {
        "description": "consistency of the 3-leaf and 7-leaf RFC 6962 test trees",
        "proof": proof,
        "trusted_first_root": proof["first_root"],
        "trusted_second_root": proof["second_root"],
    }
    path_length = len(proof["path"])  # type: ignore[arg-type]
    mutations: dict[str, tuple[Mutation, str]] = {
        "first-size@-1": (_set("proof", "first_size", value=2), "malformed_proof"),
        "first-size@+1": (_set("proof", "first_size", value=4), "malformed_proof"),
        "second-size@x2": (_set("proof", "second_size", value=14), "malformed_proof"),
        "second-size@half": (_set("proof", "second_size", value=3), "malformed_proof"),
        "first-size@0": (_set("proof", "first_size", value=0), "malformed_proof"),
        "swapped-sizes": (
            lambda v: v["proof"].update(first_size=7, second_size=3),  # type: ignore[union-attr]
            "precondition_failed",
        ),
        "wrong-trusted-first-root": (
            _set("trusted_first_root", value=SOME_HASH),
            "root_mismatch",
        ),
        "wrong-trusted-second-root": (
            _set("trusted_second_root", value=SOME_HASH),
            "root_mismatch",
        ),
        "empty-path": (_edit_path(lambda p: []), "malformed_proof"),
        "truncated-path": (_edit_path(lambda p: p[:-1]), "malformed_proof"),
        "extended-path": (_edit_path(lambda p: [*p, SOME_HASH]), "malformed_proof"),
        "prepended-path": (_edit_path(lambda p: [SOME_HASH, *p]), "malformed_proof"),
    }
    for i in range(path_length):
        mutations[f"modified-path@{i}-bit@4"] = (_flip_path(i), "root_mismatch")
    return _expand("consistency", happy, mutations)


def balance_vectors() -> dict[str, Vector]:
    tree = SumTree((data, 100 * i + 7) for i, data in enumerate(LEAF_DATA[:7]))
    proof = tree.proof(5)
    root_hash, root_sum = tree.root()
    happy: Vector = {
        "description": "balance proof of leaf 5 in a 7-leaf Merkle-sum tree",
        "proof": proof,
        "trusted_root_hash": root_hash.hex(),
        "trusted_root_sum": root_sum,
    }
    mutations: dict[str, tuple[Mutation, str]] = {
        "leaf-sum@+1": (_set("proof", "leaf_sum", value=508), "root_mismatch"),
        "leaf-sum@negative": (_set("proof", "leaf_sum", value=-507), "sum_out_of_range"),
        "leaf-data-changed": (_set("proof", "leaf_data", value="AAAA"), "root_mismatch"),
        "path@0-sum@+1": (_set("proof", "path", 0, "sum", value=608), "root_mismatch"),
        "path@1-sum@negative": (_set("proof", "path", 1, "sum", value=-1), "sum_out_of_range"),
        "path@0-hash-bit@4": (_flip_path(0, "hash"), "root_mismatch"),
        "root-sum@+1": (_set("proof", "root_sum", value=root_sum + 1), "sum_mismatch"),
        "wrong-trusted-root-sum": (_set("trusted_root_sum", value=root_sum - 1), "sum_mismatch"),
        "truncated-path": (_edit_path(lambda p: p[:-1]), "malformed_proof"),
        "leaf-index@+1": (_set("proof", "leaf_index", value=6), "malformed_proof"),
    }
    return _expand("balance", happy, mutations)


def build_vectors() -> dict[str, Vector]:
    tree = MerkleTree()
    tree.extend(leaf_hash(data) for data in LEAF_DATA)
    return {**inclusion_vectors(tree), **consistency_vectors(tree), **balance_vectors()}


def render(vector: Vector) -> str:
    return json.dumps(vector, indent=2, sort_keys=True) + "\n"


def main() -> None:
    VECTORS_DIR.mkdir(exist_ok=True)
    for stale in VECTORS_DIR.glob("*.json"):
        stale.unlink()
    for name, vector in build_vectors().items():
        (VECTORS_DIR / f"{name}.json").write_text(render(vector), encoding="utf-8")


if __name__ == "__main__":
    main()
