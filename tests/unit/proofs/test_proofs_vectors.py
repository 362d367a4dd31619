"""The JSON vectors in `vectors/` are current and each one verifies or fails as it says."""

import importlib.util
import json
from pathlib import Path

import pytest

from proofs.core.errors import ProofError
from proofs.core.proof_json import verify_consistency_proof, verify_inclusion_proof
from proofs.core.sumtree import verify_balance_proof

HERE = Path(__file__).parent
VECTOR_FILES = sorted((HERE / "vectors").glob("*.json"))


def _load_generator():
    # Loaded by path: the tests directory is not a package.
    spec = importlib.util.spec_from_file_location("proofs_make_vectors", HERE / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(vector: dict) -> None:
    proof = vector["proof"]
    if "trusted_root" in vector:
        verify_inclusion_proof(proof, bytes.fromhex(vector["trusted_root"]))
    elif "trusted_first_root" in vector:
        verify_consistency_proof(
            proof,
            bytes.fromhex(vector["trusted_first_root"]),
            bytes.fromhex(vector["trusted_second_root"]),
        )
    else:
        verify_balance_proof(
            proof, bytes.fromhex(vector["trusted_root_hash"]), vector["trusted_root_sum"]
        )


def test_vector_files_match_the_generator():
    generator = _load_generator()
    vectors = generator.build_vectors()
    expected = {f"{name}.json": generator.render(vector) for name, vector in vectors.items()}
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in VECTOR_FILES}
    assert on_disk == expected, "run make_vectors.py and commit the result"


def test_vectors_cover_every_proof_kind():
    names = {path.name for path in VECTOR_FILES}
    assert {
        "inclusion-happy-path.json",
        "inclusion-modified-path@0-bit@4.json",
        "consistency-happy-path.json",
        "balance-happy-path.json",
    } <= names


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.stem)
def test_vector(path: Path):
    vector = json.loads(path.read_text(encoding="utf-8"))
    if vector["want_error"] is None:
        _check(vector)
    else:
        with pytest.raises(ProofError) as caught:
            _check(vector)
        assert caught.value.code == vector["want_error"]
