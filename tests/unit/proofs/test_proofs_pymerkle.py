"""Cross-check against pymerkle 7, an independent RFC 9162 implementation (dev dependency).

pymerkle counts leaves from one, and its inclusion path is [leaf hash, *RFC 9162 path]. Its
consistency proofs use their own layout (with a `subset` mask), not RFC 9162's order, so for
those we check that its proofs verify against our roots.
"""

import pytest

from proofs.core.rfc9162 import leaf_hash, verify_inclusion
from proofs.core.tree import MerkleTree

pymerkle = pytest.importorskip("pymerkle")
from pymerkle.proof import InclusionProof  # noqa: E402  (after importorskip)

N = 40
ENTRIES = [b"entry %d" % i for i in range(N)]


@pytest.fixture(scope="module")
def trees() -> tuple[object, MerkleTree]:
    theirs = pymerkle.InmemoryTree(algorithm="sha256")
    ours = MerkleTree()
    for entry in ENTRIES:
        theirs.append_entry(entry)
        ours.append(leaf_hash(entry))
    return theirs, ours


def test_leaf_hashes_and_roots_agree_at_every_size(trees):
    theirs, ours = trees
    for index in range(N):
        assert theirs.get_leaf(index + 1) == leaf_hash(ENTRIES[index])
    for size in range(1, N + 1):
        assert theirs.get_root(size) == ours.root(size)


def test_inclusion_proofs_are_interchangeable(trees):
    theirs, ours = trees
    for size in range(1, N + 1):
        root = ours.root(size)
        for index in range(size):
            their_proof = theirs.prove_inclusion(index + 1, size)
            leaf, *their_path = their_proof.path
            verify_inclusion(leaf, index, size, their_path, root)

            our_path = [bytes.fromhex(h) for h in ours.inclusion_proof(index, size)["path"]]
            assert our_path == their_path
            reassembled = InclusionProof(
                "sha256", True, size, index + 1, their_proof.rule, [leaf, *our_path]
            )
            pymerkle.verify_inclusion(leaf, root, reassembled, index=index + 1, size=size)


def test_their_consistency_proofs_verify_against_our_roots(trees):
    theirs, ours = trees
    for second in range(1, N + 1):
        for first in range(1, second + 1):
            proof = theirs.prove_consistency(first, second)
            pymerkle.verify_consistency(
                ours.root(first), ours.root(second), proof, prior_size=first, later_size=second
            )
