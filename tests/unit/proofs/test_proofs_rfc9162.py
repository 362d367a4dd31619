"""RFC 9162 hashing, proof generation from perfect nodes, and verification."""

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs.core.errors import MalformedProof, PreconditionFailed, ProofError, RootMismatch
from proofs.core.rfc9162 import (
    LEAF_PREFIX,
    NODE_PREFIX,
    GetNode,
    consistency_path,
    empty_root,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_at,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 test data as published by Certificate Transparency and transparency-dev/merkle
# (proof/verify_test.go, testonly/constants.go): eight leaves and the root of every prefix.
CT_LEAVES = [
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
CT_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# Same source: (leaf index, tree size) -> path, and (size1, size2) -> path.
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
CT_CONSISTENCY = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 7): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_LEAF_HASHES = [leaf_hash(data) for data in CT_LEAVES]
N = 40
LEAF_HASHES = [leaf_hash(i.to_bytes(2, "big")) for i in range(N)]


# Reference implementation: RFC 9162 section 2.1 transcribed recursively, independent of the
# iterative code under test.
def _split(n: int) -> int:
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def ref_mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(ref_mth(hashes[:k]), ref_mth(hashes[k:]))


def ref_path(m: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if m < k:
        return ref_path(m, hashes[:k]) + [ref_mth(hashes[k:])]
    return ref_path(m - k, hashes[k:]) + [ref_mth(hashes[:k])]


def ref_subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [ref_mth(hashes)]
    k = _split(n)
    if m <= k:
        return ref_subproof(m, hashes[:k], whole) + [ref_mth(hashes[k:])]
    return ref_subproof(m - k, hashes[k:], False) + [ref_mth(hashes[:k])]


def perfect_nodes(hashes: list[bytes]) -> GetNode:
    """A GetNode that refuses anything but a perfect subtree inside the tree."""

    def get_node(level: int, index: int) -> bytes:
        start, end = index << level, (index + 1) << level
        assert end <= len(hashes), f"asked for node ({level}, {index}) beyond the tree"
        return ref_mth(hashes[start:end])

    return get_node


def _hexes(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def test_prefixes_are_the_rfc_domain_separators():
    assert (LEAF_PREFIX, NODE_PREFIX) == (b"\x00", b"\x01")
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )


def test_empty_root_is_sha256_of_the_empty_string():
    assert empty_root().hex() == CT_ROOTS[0]
    assert root_from_leaf_hashes([]) == empty_root()
    assert root_at(0, perfect_nodes([])) == empty_root()


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_rfc6962_test_vectors(size):
    prefix = CT_LEAF_HASHES[:size]
    assert root_from_leaf_hashes(prefix).hex() == CT_ROOTS[size]
    assert root_at(size, perfect_nodes(prefix)).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size"), CT_INCLUSION)
def test_inclusion_paths_match_the_published_ones(index, size):
    get_node = perfect_nodes(CT_LEAF_HASHES[:size])
    path = inclusion_path(index, size, get_node)
    assert _hexes(path) == CT_INCLUSION[index, size]
    verify_inclusion(CT_LEAF_HASHES[index], index, size, path, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("first", "second"), CT_CONSISTENCY)
def test_consistency_paths_match_the_published_ones(first, second):
    path = consistency_path(first, second, perfect_nodes(CT_LEAF_HASHES[:second]))
    assert _hexes(path) == CT_CONSISTENCY[first, second]
    verify_consistency(
        first, second, bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second]), path
    )


def test_roots_match_the_reference_for_every_size():
    for size in range(N + 1):
        expected = ref_mth(LEAF_HASHES[:size])
        assert root_from_leaf_hashes(LEAF_HASHES[:size]) == expected
        assert root_at(size, perfect_nodes(LEAF_HASHES[:size])) == expected


def test_every_inclusion_proof_at_every_size_verifies():
    for size in range(1, N + 1):
        hashes = LEAF_HASHES[:size]
        root = ref_mth(hashes)
        for index in range(size):
            path = inclusion_path(index, size, perfect_nodes(hashes))
            assert path == ref_path(index, hashes), (index, size)
            verify_inclusion(hashes[index], index, size, path, root)


def test_every_consistency_proof_between_every_pair_of_sizes_verifies():
    for second in range(1, N + 1):
        hashes = LEAF_HASHES[:second]
        second_root = ref_mth(hashes)
        for first in range(0, second + 1):
            path = consistency_path(first, second, perfect_nodes(hashes))
            expected = [] if first in (0, second) else ref_subproof(first, hashes, True)
            assert path == expected, (first, second)
            verify_consistency(first, second, ref_mth(hashes[:first]), second_root, path)


def _flip(digest: bytes, bit: int = 4) -> bytes:
    return bytes([digest[0] ^ (1 << bit)]) + digest[1:]


SOME_HASH = hashlib.sha256(b"some other hash").digest()


def inclusion_mutations(
    leaf: bytes, index: int, size: int, path: list[bytes], root: bytes
) -> Iterator[tuple[str, tuple]]:
    """Wrong variants of a valid inclusion proof, after transparency-dev's corruptions."""
    yield "index - 1", (leaf, index - 1, size, path, root)
    yield "index + 1", (leaf, index + 1, size, path, root)
    yield "index ^ 2", (leaf, index ^ 2, size, path, root)
    yield "size * 2", (leaf, index, size * 2, path, root)
    yield "size // 2", (leaf, index, size // 2, path, root)
    yield "wrong leaf", (SOME_HASH, index, size, path, root)
    yield "empty root", (leaf, index, size, path, empty_root())
    yield "wrong root", (leaf, index, size, path, SOME_HASH)
    yield "trailing hash", (leaf, index, size, [*path, SOME_HASH], root)
    yield "trailing root", (leaf, index, size, [*path, root], root)
    yield "preceding root", (leaf, index, size, [root, *path], root)
    yield "short element", (leaf, index, size, [*path[:-1], path[-1][:31]] if path else [b""], root)
    for i in range(len(path)):
        yield (
            f"path[{i}] bit 4",
            (leaf, index, size, [*path[:i], _flip(path[i]), *path[i + 1 :]], root),
        )
    if path:
        yield "truncated", (leaf, index, size, path[:-1], root)
    if len(path) > 1:
        yield "inserted", (leaf, index, size, [path[0], SOME_HASH, *path[1:]], root)


def test_every_mutated_inclusion_proof_is_rejected():
    for size in range(1, 21):
        hashes = LEAF_HASHES[:size]
        root = ref_mth(hashes)
        for index in range(size):
            path = inclusion_path(index, size, perfect_nodes(hashes))
            for description, args in inclusion_mutations(hashes[index], index, size, path, root):
                with pytest.raises(ProofError):
                    verify_inclusion(*args)
                    pytest.fail(f"accepted {description} for leaf {index} of {size}")


def consistency_mutations(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> Iterator[tuple[str, tuple]]:
    yield "size1 - 1", (first - 1, second, first_root, second_root, path)
    yield "size1 + 1", (first + 1, second, first_root, second_root, path)
    yield "size1 ^ 2", (first ^ 2, second, first_root, second_root, path)
    yield "size2 * 2", (first, second * 2, first_root, second_root, path)
    yield "size2 // 2", (first, second // 2, first_root, second_root, path)
    yield "wrong root1", (first, second, SOME_HASH, second_root, path)
    yield "wrong root2", (first, second, first_root, SOME_HASH, path)
    yield "swapped roots", (first, second, second_root, first_root, path)
    yield "empty path", (first, second, first_root, second_root, [])
    yield "trailing root1", (first, second, first_root, second_root, [*path, first_root])
    yield "trailing root2", (first, second, first_root, second_root, [*path, second_root])
    yield "preceding root1", (first, second, first_root, second_root, [first_root, *path])
    yield "preceding root2", (first, second, first_root, second_root, [second_root, *path])
    yield "preceding path[0]", (first, second, first_root, second_root, [path[0], *path])
    yield "truncated", (first, second, first_root, second_root, path[:-1])
    for i in range(len(path)):
        mutated = [*path[:i], _flip(path[i]), *path[i + 1 :]]
        yield f"path[{i}] bit 4", (first, second, first_root, second_root, mutated)


def test_every_mutated_consistency_proof_is_rejected():
    for second in range(2, 21):
        hashes = LEAF_HASHES[:second]
        for first in range(1, second):
            path = consistency_path(first, second, perfect_nodes(hashes))
            roots = (ref_mth(hashes[:first]), ref_mth(hashes))
            for description, args in consistency_mutations(first, second, *roots, path):
                with pytest.raises(ProofError):
                    verify_consistency(*args)
                    pytest.fail(f"accepted {description} for {first} -> {second}")


@pytest.mark.parametrize(("index", "size"), [(-1, 1), (0, 0), (1, 1), (5, 3)])
def test_inclusion_requires_index_below_size(index, size):
    with pytest.raises(PreconditionFailed, match="Requires 0 <= index < size"):
        verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)
    with pytest.raises(PreconditionFailed, match="Requires 0 <= index < size"):
        inclusion_path(index, size, perfect_nodes(LEAF_HASHES))


@pytest.mark.parametrize(("first", "second"), [(-1, 3), (4, 3), (1, 0)])
def test_consistency_requires_ordered_sizes(first, second):
    with pytest.raises(PreconditionFailed, match="Requires 0 <= size1 <= size2"):
        verify_consistency(first, second, SOME_HASH, SOME_HASH, [SOME_HASH])
    with pytest.raises(PreconditionFailed, match="Requires 0 <= size1 <= size2"):
        consistency_path(first, second, perfect_nodes(LEAF_HASHES))


def test_single_leaf_tree_root_is_the_leaf_and_the_path_is_empty():
    verify_inclusion(LEAF_HASHES[0], 0, 1, [], LEAF_HASHES[0])
    with pytest.raises(MalformedProof, match="longer"):
        verify_inclusion(LEAF_HASHES[0], 0, 1, [SOME_HASH], LEAF_HASHES[0])


def test_equal_sizes_need_an_empty_path_and_equal_roots():
    root = ref_mth(LEAF_HASHES[:5])
    verify_consistency(5, 5, root, root, [])
    with pytest.raises(RootMismatch):
        verify_consistency(5, 5, root, SOME_HASH, [])
    with pytest.raises(MalformedProof, match="empty path"):
        verify_consistency(5, 5, root, root, [root])


def test_first_size_zero_needs_an_empty_path_and_the_empty_root():
    root = ref_mth(LEAF_HASHES[:5])
    verify_consistency(0, 5, empty_root(), root, [])
    verify_consistency(0, 0, empty_root(), empty_root(), [])
    with pytest.raises(RootMismatch):
        verify_consistency(0, 5, SOME_HASH, root, [])
    with pytest.raises(RootMismatch):
        verify_consistency(0, 0, empty_root(), SOME_HASH, [])
    with pytest.raises(MalformedProof, match="empty path"):
        verify_consistency(0, 5, empty_root(), root, [empty_root()])


def test_a_growing_tree_needs_a_non_empty_consistency_path():
    with pytest.raises(MalformedProof, match="empty consistency path"):
        verify_consistency(1, 2, LEAF_HASHES[0], ref_mth(LEAF_HASHES[:2]), [])


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "00" * 32, None])
def test_hashes_must_be_32_bytes(bad):
    root = ref_mth(LEAF_HASHES[:2])
    with pytest.raises(MalformedProof):
        verify_inclusion(bad, 0, 2, [LEAF_HASHES[1]], root)
    with pytest.raises(MalformedProof):
        verify_inclusion(LEAF_HASHES[0], 0, 2, [bad], root)
    with pytest.raises(MalformedProof):
        verify_inclusion(LEAF_HASHES[0], 0, 2, [LEAF_HASHES[1]], bad)
    with pytest.raises(MalformedProof):
        verify_consistency(1, 2, LEAF_HASHES[0], root, [bad])


def test_root_mismatch_carries_both_roots_as_hex():
    root = ref_mth(LEAF_HASHES[:2])
    with pytest.raises(RootMismatch) as caught:
        verify_inclusion(LEAF_HASHES[0], 0, 2, [LEAF_HASHES[1]], SOME_HASH)
    assert caught.value.expected == SOME_HASH.hex()
    assert caught.value.computed == root.hex()
    assert caught.value.code == "root_mismatch"


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_property_inclusion_verifies_and_any_flipped_bit_fails(size_and_index):
    size, index = size_and_index
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = root_from_leaf_hashes(hashes)
    path = inclusion_path(index, size, perfect_nodes(hashes))
    verify_inclusion(hashes[index], index, size, path, root)
    for i in range(len(path)):
        for bit in (0, 7):
            with pytest.raises(RootMismatch):
                verify_inclusion(
                    hashes[index],
                    index,
                    size,
                    [*path[:i], _flip(path[i], bit), *path[i + 1 :]],
                    root,
                )


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_property_consistency_verifies_and_other_roots_fail(sizes):
    first, second = sizes
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(second)]
    path = consistency_path(first, second, perfect_nodes(hashes))
    first_root, second_root = root_from_leaf_hashes(hashes[:first]), root_from_leaf_hashes(hashes)
    verify_consistency(first, second, first_root, second_root, path)
    with pytest.raises(RootMismatch):
        verify_consistency(first, second, SOME_HASH, second_root, path)
    # Every tree extends the empty one, so size1 == 0 cannot pin down the second root.
    if 0 < first < second:
        with pytest.raises(RootMismatch):
            verify_consistency(first, second, first_root, SOME_HASH, path)


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_property_roots_equal_the_recursive_definition(entries):
    hashes = [leaf_hash(entry) for entry in entries]
    assert root_from_leaf_hashes(hashes) == ref_mth(hashes)
    assert root_at(len(hashes), perfect_nodes(hashes)) == ref_mth(hashes)
