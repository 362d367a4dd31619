"""RFC 9162 (RFC 6962) Merkle tree hashing, proof generation and proof verification.

Invariant: every hash here equals the Merkle Tree Hash (MTH) of RFC 9162 section 2.1.1, so
proofs produced here verify with any conforming verifier and vice versa.

Proofs are generated from stored nodes through the `GetNode` port: `get_node(level, index)`
returns the hash of the perfect subtree of 2**level leaves starting at leaf index * 2**level.
Only perfect subtrees are ever stored; a node on the right edge of a tree whose size is not a
power of two is recomputed from the O(log n) perfect subtrees it covers.
"""

import hashlib
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from proofs.core.encoding import HASH_SIZE
from proofs.core.errors import MalformedProof, PreconditionFailed, RootMismatch

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

T = TypeVar("T")


class GetNode(Protocol):
    """Port to stored nodes: the hash of the perfect subtree (level, index)."""

    def __call__(self, level: int, index: int) -> bytes: ...


def leaf_hash(data: bytes) -> bytes:
    """MTH of a single entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """MTH of the empty tree: SHA-256 of the empty string."""
    return hashlib.sha256(b"").digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, computed level by level in O(n).

    Pairing neighbours and carrying a lone last node up unchanged yields exactly the tree of
    RFC 9162's split at the largest power of two smaller than n.
    """
    if not hashes:
        return empty_root()
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162's split: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_hash(start: int, end: int, get_node: GetNode) -> bytes:
    """MTH of leaves [start, end) for a node of an RFC 9162 tree.

    Such a node is either perfect (one stored node) or lies on the right edge; then `start`
    is aligned to the next power of two above its width, so its leaves split into perfect,
    aligned subtrees of decreasing size, folded right to left.
    """
    parts: list[bytes] = []
    while start < end:
        level = (end - start).bit_length() - 1
        parts.append(get_node(level, start >> level))
        start += 1 << level
    result = parts.pop()
    while parts:
        result = node_hash(parts.pop(), result)
    return result


def root_at(size: int, get_node: GetNode) -> bytes:
    """MTH of the first `size` leaves, from O(log size) stored perfect nodes."""
    if size < 0:
        raise PreconditionFailed(f"Requires 0 <= size, got {size}")
    if size == 0:
        return empty_root()
    return _subtree_hash(0, size, get_node)


def inclusion_path(leaf_index: int, tree_size: int, get_node: GetNode) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1, leaf-side sibling first.

    Descending from the root, at most one sibling (the first right-hand one) lies on the right
    edge of the tree; every later subtree is perfect, so this costs O(log n) node reads.
    """
    if not 0 <= leaf_index < tree_size:
        raise PreconditionFailed(f"Requires 0 <= index < size, got {leaf_index}, {tree_size}")
    siblings: list[bytes] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if leaf_index < start + k:
            siblings.append(_subtree_hash(start + k, end, get_node))
            end = start + k
        else:
            siblings.append(_subtree_hash(start, start + k, get_node))
            start += k
    siblings.reverse()
    return siblings


def consistency_path(first_size: int, second_size: int, get_node: GetNode) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 9162 section 2.1.4.1.

    Empty when first_size is 0 or equal to second_size: nothing needs proving.
    """
    if not 0 <= first_size <= second_size:
        raise PreconditionFailed(f"Requires 0 <= size1 <= size2, got {first_size}, {second_size}")
    if first_size in (0, second_size):
        return []
    proof: list[bytes] = []
    start, end = 0, second_size
    whole_old_tree = True  # SUBPROOF's b: the old root is known to the verifier
    while first_size - start != end - start:
        k = _largest_power_of_two_below(end - start)
        if first_size - start <= k:
            proof.append(_subtree_hash(start + k, end, get_node))
            end = start + k
        else:
            proof.append(_subtree_hash(start, start + k, get_node))
            start += k
            whole_old_tree = False
    if not whole_old_tree:
        proof.append(_subtree_hash(start, end, get_node))
    proof.reverse()
    return proof


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise MalformedProof(f"{what} must be {HASH_SIZE} bytes")
    return value


def root_from_inclusion_path(
    leaf: T, leaf_index: int, tree_size: int, path: Sequence[T], combine: Callable[[T, T], T]
) -> T:
    """The root implied by an inclusion path: RFC 9162 section 2.1.3.2 steps 1 to 5.

    Generic over the node value so the Merkle-sum tree, which has the same shape, reuses the
    exact algorithm; `combine(left, right)` builds a parent.
    """
    if not 0 <= leaf_index < tree_size:
        raise PreconditionFailed(f"Requires 0 <= index < size, got {leaf_index}, {tree_size}")
    fn, sn = leaf_index, tree_size - 1
    r = leaf
    for p in path:
        if sn == 0:
            raise MalformedProof(f"path is longer than a tree of size {tree_size} allows")
        if fn & 1 or fn == sn:
            r = combine(p, r)
            # A last node without a right sibling is carried up until it is a right child.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = combine(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MalformedProof(f"path is shorter than a tree of size {tree_size} needs")
    return r


def verify_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `leaf_index` of the tree of `tree_size` with `root`.

    Requires 0 <= index < size. Raises `ProofError` subclasses; returns None on success.
    """
    leaf_hash = _check_hash(leaf_hash, "leaf hash")
    root = _check_hash(root, "root")
    path = [_check_hash(p, f"path[{i}]") for i, p in enumerate(path)]
    computed = root_from_inclusion_path(leaf_hash, leaf_index, tree_size, path, node_hash)
    if computed != root:
        raise RootMismatch(root, computed)


def verify_consistency(
    first_size: int,
    second_size: int,
    first_root: bytes,
    second_root: bytes,
    path: Sequence[bytes],
) -> None:
    """Check that the tree of `first_size` is a prefix of the tree of `second_size`.

    Requires 0 <= size1 <= size2. RFC 9162 section 2.1.4.2 covers 0 < size1 < size2; the edge
    cases take an empty path: size1 == size2 needs equal roots, and size1 == 0 needs the
    empty-tree root (the only root a tree of size 0 can have).
    """
    if not 0 <= first_size <= second_size:
        raise PreconditionFailed(f"Requires 0 <= size1 <= size2, got {first_size}, {second_size}")
    first_root = _check_hash(first_root, "first root")
    second_root = _check_hash(second_root, "second root")
    path = [_check_hash(p, f"path[{i}]") for i, p in enumerate(path)]
    if first_size in (0, second_size):
        if path:
            raise MalformedProof(f"sizes {first_size} and {second_size} need an empty path")
        if first_size == 0 and first_root != empty_root():
            raise RootMismatch(empty_root(), first_root)
        if first_size == second_size and first_root != second_root:
            raise RootMismatch(second_root, first_root)
        return
    # RFC 9162 section 2.1.4.2, steps 1 to 7.
    if not path:
        raise MalformedProof("empty consistency path")
    if first_size & (first_size - 1) == 0:
        path = [first_root, *path]
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise MalformedProof(f"path is longer than sizes {first_size}, {second_size} allow")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise MalformedProof(f"path is shorter than sizes {first_size}, {second_size} need")
    if fr != first_root:
        raise RootMismatch(first_root, fr)
    if sr != second_root:
        raise RootMismatch(second_root, sr)
