"""MerkleTree over the NodeStore port, and the DESIGN section 5 proof JSON."""

import hashlib
import json

import pytest

from proofs.core.errors import (
    MalformedProof,
    MissingNode,
    PreconditionFailed,
    RootMismatch,
)
from proofs.core.proof_json import verify_consistency_proof, verify_inclusion_proof
from proofs.core.rfc9162 import empty_root, leaf_hash, root_from_leaf_hashes
from proofs.core.tree import MemoryNodeStore, MerkleTree

N = 40
LEAF_HASHES = [leaf_hash(i.to_bytes(2, "big")) for i in range(N)]


class RecordingStore(MemoryNodeStore):
    """Counts port calls, to pin down how the tree uses its store."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.put_calls: list[list[tuple[int, int, bytes]]] = []

    def get(self, level: int, index: int) -> bytes | None:
        self.gets += 1
        return super().get(level, index)

    def put_many(self, items) -> None:
        items = list(items)
        self.put_calls.append(items)
        super().put_many(items)


class FailingStore(MemoryNodeStore):
    def put_many(self, items) -> None:
        raise OSError("disk full")


def test_empty_tree():
    tree = MerkleTree()
    assert tree.size == 0
    assert tree.root() == empty_root()


def test_append_and_extend_agree_with_the_rfc_root_at_every_size():
    appended, extended = MerkleTree(), MerkleTree()
    for size, digest in enumerate(LEAF_HASHES, start=1):
        assert appended.append(digest) == size - 1
        assert appended.root() == root_from_leaf_hashes(LEAF_HASHES[:size])
    extended.extend(LEAF_HASHES)
    assert extended.root() == appended.root()
    for size in range(N + 1):
        assert extended.root(size) == root_from_leaf_hashes(LEAF_HASHES[:size])


def test_store_holds_exactly_the_perfect_subtrees():
    store = RecordingStore()
    MerkleTree(store).extend(LEAF_HASHES[:37])
    (items,) = store.put_calls
    keys = {(level, index) for level, index, _ in items}
    expected = {(level, index) for level in range(6) for index in range(37 >> level)}
    assert keys == expected
    for level, index, digest in items:
        assert digest == root_from_leaf_hashes(LEAF_HASHES[index << level : (index + 1) << level])


def test_extend_writes_once_and_reads_nothing():
    store = RecordingStore()
    tree = MerkleTree(store)
    tree.extend(LEAF_HASHES[:10])
    tree.extend(LEAF_HASHES[10:])
    assert store.gets == 0
    assert len(store.put_calls) == 2
    # 2n - popcount(n) perfect nodes in total: amortised under two hashes per leaf.
    assert sum(map(len, store.put_calls)) == 2 * N - bin(N).count("1")


def test_reopening_from_the_store_continues_the_same_tree():
    store = MemoryNodeStore()
    MerkleTree(store).extend(LEAF_HASHES[:23])
    reopened = MerkleTree(store, size=23)
    reopened.extend(LEAF_HASHES[23:])
    assert reopened.root() == root_from_leaf_hashes(LEAF_HASHES)


def test_reopening_with_a_size_the_store_cannot_back_fails():
    store = MemoryNodeStore()
    MerkleTree(store).extend(LEAF_HASHES[:8])
    with pytest.raises(MissingNode):
        MerkleTree(store, size=9)
    with pytest.raises(PreconditionFailed):
        MerkleTree(store, size=-1)


def test_nodes_beyond_the_size_are_ignored_and_overwritten():
    store = MemoryNodeStore()
    MerkleTree(store).extend(LEAF_HASHES[:12])  # e.g. a batch whose transaction rolled back
    tree = MerkleTree(store, size=8)
    other = [hashlib.sha256(b"other %d" % i).digest() for i in range(4)]
    tree.extend(other)
    expected = LEAF_HASHES[:8] + other
    assert tree.root() == root_from_leaf_hashes(expected)
    verify_inclusion_proof(tree.inclusion_proof(10, 12), root_from_leaf_hashes(expected))


def test_a_failed_write_leaves_the_tree_unchanged():
    tree = MerkleTree(FailingStore())
    with pytest.raises(OSError):
        tree.extend(LEAF_HASHES[:3])
    assert tree.size == 0
    assert tree.root() == empty_root()


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, "00" * 32])
def test_leaf_hashes_must_be_32_bytes(bad):
    tree = MerkleTree()
    with pytest.raises(PreconditionFailed):
        tree.extend([LEAF_HASHES[0], bad])
    assert tree.size == 0


def test_inclusion_proof_has_the_design_json_shape():
    tree = MerkleTree()
    tree.extend(LEAF_HASHES[:7])
    proof = tree.inclusion_proof(5, 7)
    assert list(proof) == ["leaf_index", "tree_size", "leaf_hash", "path", "root_hash"]
    assert proof["leaf_index"] == 5 and proof["tree_size"] == 7
    assert proof["leaf_hash"] == LEAF_HASHES[5].hex()
    assert proof["root_hash"] == root_from_leaf_hashes(LEAF_HASHES[:7]).hex()
    assert json.loads(json.dumps(proof)) == proof
    assert all(h == h.lower() and len(h) == 64 for h in proof["path"])


def test_consistency_proof_has_the_design_json_shape():
    tree = MerkleTree()
    tree.extend(LEAF_HASHES[:7])
    proof = tree.consistency_proof(3, 7)
    assert list(proof) == ["first_size", "second_size", "first_root", "second_root", "path"]
    assert proof["first_root"] == root_from_leaf_hashes(LEAF_HASHES[:3]).hex()
    assert proof["second_root"] == root_from_leaf_hashes(LEAF_HASHES[:7]).hex()


def test_every_proof_of_a_grown_tree_verifies_against_historical_roots():
    tree = MerkleTree()
    tree.extend(LEAF_HASHES)
    for size in range(1, N + 1):
        root = root_from_leaf_hashes(LEAF_HASHES[:size])
        for index in range(size):
            verify_inclusion_proof(tree.inclusion_proof(index, size), root)
        for first in range(size + 1):
            first_root = root_from_leaf_hashes(LEAF_HASHES[:first])
            verify_consistency_proof(tree.consistency_proof(first, size), first_root, root)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.root(9),
        lambda t: t.root(-1),
        lambda t: t.inclusion_proof(0, 9),
        lambda t: t.inclusion_proof(8, 8),
        lambda t: t.consistency_proof(3, 9),
        lambda t: t.consistency_proof(5, 4),
        lambda t: t.consistency_proof(-1, 4),
    ],
)
def test_proofs_outside_the_tree_are_refused(call):
    tree = MerkleTree()
    tree.extend(LEAF_HASHES[:8])
    with pytest.raises(PreconditionFailed):
        call(tree)


def _proof_and_root():
    tree = MerkleTree()
    tree.extend(LEAF_HASHES[:7])
    return tree.inclusion_proof(2, 7), tree.root()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("leaf_index", True),
        ("leaf_index", "2"),
        ("leaf_index", -1),
        ("tree_size", 7.0),
        ("leaf_hash", LEAF_HASHES[2].hex().upper()),
        ("leaf_hash", LEAF_HASHES[2].hex()[:-2]),
        ("leaf_hash", LEAF_HASHES[2]),
        ("path", "not a list"),
        ("path", [None]),
        ("root_hash", "zz" * 32),
    ],
)
def test_inclusion_json_reader_is_strict(field, value):
    proof, root = _proof_and_root()
    proof[field] = value
    with pytest.raises(MalformedProof):
        verify_inclusion_proof(proof, root)


def test_inclusion_json_refuses_unknown_and_missing_fields():
    proof, root = _proof_and_root()
    with pytest.raises(MalformedProof):
        verify_inclusion_proof({**proof, "extra": 1}, root)
    del proof["path"]
    with pytest.raises(MalformedProof):
        verify_inclusion_proof(proof, root)
    with pytest.raises(MalformedProof):
        verify_inclusion_proof([proof], root)


def test_json_proofs_are_checked_against_the_trusted_root_not_the_claimed_one():
    proof, root = _proof_and_root()
    other_root = hashlib.sha256(b"someone else's checkpoint").digest()
    with pytest.raises(RootMismatch):
        verify_inclusion_proof(proof, other_root)
    # A correct path with a wrong claimed root is still refused: the JSON must not lie.
    with pytest.raises(RootMismatch):
        verify_inclusion_proof({**proof, "root_hash": other_root.hex()}, root)


def test_consistency_json_checks_both_trusted_roots():
    tree = MerkleTree()
    tree.extend(LEAF_HASHES[:7])
    proof = tree.consistency_proof(3, 7)
    first, second = tree.root(3), tree.root(7)
    verify_consistency_proof(proof, first, second)
    with pytest.raises(RootMismatch):
        verify_consistency_proof(proof, second, second)
    with pytest.raises(RootMismatch):
        verify_consistency_proof({**proof, "second_root": first.hex()}, first, second)
    with pytest.raises(MalformedProof):
        verify_consistency_proof({**proof, "first_size": False}, first, second)
