"""Merkle-sum state tree: construction, updates, balance proofs and their rejection."""

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.core.errors import (
    MalformedProof,
    PreconditionFailed,
    ProofError,
    RootMismatch,
    SumMismatch,
    SumOutOfRange,
)
from proofs.core.rfc9162 import empty_root
from proofs.core.sumtree import SUM_LIMIT, SumTree, verify_balance_proof


def s16(value: int) -> bytes:
    return value.to_bytes(16, "big")


# Reference: the documented construction, recursive with RFC 9162's split, written
# independently of SumTree's level-by-level storage.
def ref_leaf(data: bytes, amount: int) -> tuple[bytes, int]:
    return hashlib.sha256(b"\x00" + data + s16(amount)).digest(), amount


def ref_root(leaves: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    if len(leaves) == 1:
        return ref_leaf(*leaves[0])
    k = 1
    while 2 * k < len(leaves):
        k *= 2
    (lh, ls), (rh, rs) = ref_root(leaves[:k]), ref_root(leaves[k:])
    return hashlib.sha256(b"\x01" + lh + s16(ls) + rh + s16(rs)).digest(), ls + rs


def accounts(n: int) -> list[tuple[bytes, int]]:
    return [(b"account %d" % i, (i * 7919) % 1000) for i in range(n)]


def test_empty_tree_root_is_the_empty_hash_with_sum_zero():
    assert SumTree().root() == (empty_root(), 0)


def test_one_and_two_leaf_roots_by_hand():
    tree = SumTree([(b"alice", 5)])
    assert tree.root() == (hashlib.sha256(b"\x00alice" + b"\x00" * 15 + b"\x05").digest(), 5)
    tree.append_leaf(b"bob", 7)
    alice = hashlib.sha256(b"\x00alice" + s16(5)).digest()
    bob = hashlib.sha256(b"\x00bob" + s16(7)).digest()
    assert tree.root() == (hashlib.sha256(b"\x01" + alice + s16(5) + bob + s16(7)).digest(), 12)


def test_root_matches_the_reference_and_sums_the_leaves_at_every_size():
    for size in range(1, 40):
        leaves = accounts(size)
        tree = SumTree(leaves)
        assert tree.root() == ref_root(leaves)
        assert tree.root()[1] == sum(amount for _, amount in leaves)


def test_every_balance_proof_verifies_and_returns_the_leaf():
    for size in range(1, 34):
        leaves = accounts(size)
        tree = SumTree(leaves)
        root_hash, root_sum = tree.root()
        for index in range(size):
            proof = tree.proof(index)
            assert verify_balance_proof(proof, root_hash, root_sum) == leaves[index]
            assert base64.b64decode(proof["leaf_data"]) == leaves[index][0]


def test_balance_proof_shape():
    tree = SumTree(accounts(5))
    proof = tree.proof(4)
    assert list(proof) == [
        "leaf_index",
        "tree_size",
        "leaf_data",
        "leaf_sum",
        "path",
        "root_hash",
        "root_sum",
    ]
    # Leaf 4 of 5 is carried up to the top unhashed: its only sibling is the left subtree.
    assert proof["path"] == [
        {"hash": ref_root(accounts(4))[0].hex(), "sum": ref_root(accounts(4))[1]}
    ]


def test_appending_equals_building():
    leaves = accounts(37)
    tree = SumTree()
    for index, (data, amount) in enumerate(leaves):
        assert tree.append_leaf(data, amount) == index
        assert tree.root() == ref_root(leaves[: index + 1])


def test_updates_equal_a_rebuild_and_only_touch_their_paths():
    leaves = accounts(29)
    tree = SumTree(leaves)
    leaves[3] = (b"account 3 v2", 999)
    tree.set_leaf(3, *leaves[3])
    assert tree.root() == ref_root(leaves)
    updates = [(0, b"first", 1), (28, b"last", 2), (13, b"middle", 0), (0, b"first again", 4)]
    tree.set_leaves(updates)
    for index, data, amount in updates:
        leaves[index] = (data, amount)
    assert tree.root() == ref_root(leaves)
    assert tree.leaf(0) == (b"first again", 4)


def test_a_bad_update_in_a_batch_changes_nothing():
    tree = SumTree(accounts(8))
    before = tree.root()
    with pytest.raises(SumOutOfRange):
        tree.set_leaves([(1, b"fine", 10), (2, b"negative", -1)])
    with pytest.raises(PreconditionFailed):
        tree.set_leaves([(1, b"fine", 10), (8, b"beyond the end", 1)])
    assert tree.root() == before
    assert tree.leaf(1) == accounts(8)[1]


@pytest.mark.parametrize("amount", [-1, SUM_LIMIT, 2**200, True, 1.0, "5"])
def test_sums_must_be_integers_in_range(amount):
    with pytest.raises(SumOutOfRange):
        SumTree([(b"a", amount)])
    tree = SumTree([(b"a", 1)])
    with pytest.raises(SumOutOfRange):
        tree.append_leaf(b"b", amount)
    with pytest.raises(SumOutOfRange):
        tree.set_leaf(0, b"a", amount)


def test_parent_sums_must_stay_in_range():
    with pytest.raises(SumOutOfRange):
        SumTree([(b"a", 2**126), (b"b", 2**126)])
    assert SumTree([(b"a", 2**126), (b"b", 2**126 - 1)]).root()[1] == SUM_LIMIT - 1


def test_proof_index_must_be_inside_the_tree():
    tree = SumTree(accounts(3))
    for index in (-1, 3):
        with pytest.raises(PreconditionFailed):
            tree.proof(index)


def _proof():
    tree = SumTree(accounts(11))
    root_hash, root_sum = tree.root()
    return tree.proof(6), root_hash, root_sum


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda p: p.update(leaf_sum=p["leaf_sum"] + 1), RootMismatch),
        (lambda p: p.update(leaf_sum=-p["leaf_sum"] - 1), SumOutOfRange),
        (lambda p: p.update(leaf_data=base64.b64encode(b"account 7").decode()), RootMismatch),
        (lambda p: p["path"][0].update(sum=p["path"][0]["sum"] + 1), RootMismatch),
        (lambda p: p["path"][1].update(sum=-1), SumOutOfRange),
        (lambda p: p["path"][2].update(sum=SUM_LIMIT), SumOutOfRange),
        (lambda p: p["path"][0].update(hash="00" * 32), RootMismatch),
        (lambda p: p.update(root_sum=p["root_sum"] + 1), SumMismatch),
        (lambda p: p.update(root_sum=-1), SumOutOfRange),
        (lambda p: p.update(root_hash="00" * 32), RootMismatch),
        (lambda p: p.update(leaf_index=7), RootMismatch),
        (lambda p: p.update(leaf_index=11), PreconditionFailed),
        (lambda p: p.update(tree_size=64), MalformedProof),
        (lambda p: p.update(path=p["path"][:-1]), MalformedProof),
        (lambda p: p.update(path=[*p["path"], p["path"][0]]), MalformedProof),
        (lambda p: p.update(leaf_sum=True), SumOutOfRange),
        (lambda p: p.update(leaf_data="not base64!"), MalformedProof),
        (lambda p: p.update(leaf_index="6"), MalformedProof),
        (lambda p: p["path"][0].update(extra=1), MalformedProof),
        (lambda p: p.update(extra=1), MalformedProof),
        (lambda p: p.pop("root_sum"), MalformedProof),
    ],
)
def test_altered_balance_proofs_are_rejected(mutate, error):
    proof, root_hash, root_sum = _proof()
    mutate(proof)
    with pytest.raises(error):
        verify_balance_proof(proof, root_hash, root_sum)


def test_balance_proof_is_checked_against_the_trusted_root_and_sum():
    proof, root_hash, root_sum = _proof()
    verify_balance_proof(proof, root_hash)
    with pytest.raises(SumMismatch) as caught:
        verify_balance_proof(proof, root_hash, root_sum + 1)
    assert (caught.value.expected, caught.value.computed) == (root_sum + 1, root_sum)
    with pytest.raises(RootMismatch):
        verify_balance_proof(proof, hashlib.sha256(b"other").digest(), root_sum)


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.binary(max_size=6), st.integers(0, 10**12)), min_size=1, max_size=60),
    st.data(),
)
def test_property_updates_keep_the_tree_equal_to_a_rebuild(leaves, data):
    tree = SumTree(leaves)
    updates = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(leaves) - 1), st.binary(max_size=6), st.integers(0, 10**12)
            ),
            max_size=10,
        )
    )
    tree.set_leaves(updates)
    for index, leaf_data, amount in updates:
        leaves[index] = (leaf_data, amount)
    assert tree.root() == ref_root(leaves)
    root_hash, root_sum = tree.root()
    index = data.draw(st.integers(0, len(leaves) - 1))
    assert verify_balance_proof(tree.proof(index), root_hash, root_sum) == leaves[index]


@settings(max_examples=50)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_property_a_proof_for_one_leaf_never_verifies_another(size_and_index):
    size, index = size_and_index
    tree = SumTree(accounts(size))
    root_hash, root_sum = tree.root()
    proof = tree.proof(index)
    for other in range(size):
        if other != index:
            with pytest.raises(ProofError):
                verify_balance_proof({**proof, "leaf_index": other}, root_hash, root_sum)


def test_an_overflowing_total_is_refused_before_anything_changes():
    tree = SumTree([(b"a", 2**126), (b"b", 2**125)])
    before = tree.root()
    with pytest.raises(SumOutOfRange):
        tree.append_leaf(b"c", 2**126)
    with pytest.raises(SumOutOfRange):
        tree.set_leaf(1, b"b", 2**126)
    assert tree.root() == before and tree.size == 2
    tree.set_leaves([(0, b"a", 2**125), (1, b"b", 2**126)])  # total unchanged: allowed
    assert tree.root() == ref_root([(b"a", 2**125), (b"b", 2**126)])
