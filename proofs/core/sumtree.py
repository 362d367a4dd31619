"""Merkle-sum tree over account states: balance proofs for the liabilities total (DESIGN 5).

Construction (all sums are 16-byte big-endian unsigned integers, written `s16` below):
- leaf i is the i-th account opened (accounts are never deleted, so positions never move);
  leaf_hash = SHA-256(0x00 || account_state_bytes || s16(leaf_sum)), where
  `account_state_bytes` is the account's canonical state encoding, chosen by the caller. The
  sum has a fixed width at the end, so the preimage splits unambiguously.
- node = SHA-256(0x01 || left_hash || s16(left_sum) || right_hash || s16(right_sum)) and
  carries left_sum + right_sum.
- the shape is RFC 9162's (split at the largest power of two below n; equivalently a lone
  last node is carried up a level unchanged), so trees of any size work and a balance proof
  verifies with the same index/size walk as an RFC 9162 inclusion proof.
- the empty tree has root (SHA-256(""), 0).

Invariant: every sum, leaf or node, satisfies 0 <= sum < 2**127. Negative values are refused
(a negative leaf could hide liabilities), and the bound keeps every sum representable in 16
bytes even when read as signed by other implementations.
"""

import hashlib
from collections.abc import Iterable

from proofs.core.encoding import decode_base64, encode_base64
from proofs.core.errors import (
    MalformedProof,
    PreconditionFailed,
    RootMismatch,
    SumMismatch,
    SumOutOfRange,
)
from proofs.core.proof_json import read_count, read_hash, read_list, require_keys
from proofs.core.rfc9162 import LEAF_PREFIX, NODE_PREFIX, empty_root, root_from_inclusion_path

SUM_BYTES = 16
SUM_LIMIT = 2**127  # exclusive upper bound of every sum

BALANCE_PROOF_KEYS = frozenset(
    {"leaf_index", "tree_size", "leaf_data", "leaf_sum", "path", "root_hash", "root_sum"}
)
PATH_ENTRY_KEYS = frozenset({"hash", "sum"})

SumNode = tuple[bytes, int]


def check_sum(value: object) -> int:
    """`value` if it is an int (not a bool) with 0 <= value < 2**127, else SumOutOfRange."""
    if type(value) is not int:
        raise SumOutOfRange(f"sum must be an integer, got {type(value).__name__}")
    if not 0 <= value < SUM_LIMIT:
        raise SumOutOfRange(f"sum {value} is outside [0, 2**127)")
    return value


def leaf_node(leaf_bytes: bytes, leaf_sum: int) -> SumNode:
    digest = hashlib.sha256(
        LEAF_PREFIX + leaf_bytes + check_sum(leaf_sum).to_bytes(SUM_BYTES, "big")
    ).digest()
    return digest, leaf_sum


def parent_node(left: SumNode, right: SumNode) -> SumNode:
    (left_hash, left_sum), (right_hash, right_sum) = left, right
    total = check_sum(left_sum + right_sum)
    digest = hashlib.sha256(
        NODE_PREFIX
        + left_hash
        + left_sum.to_bytes(SUM_BYTES, "big")
        + right_hash
        + right_sum.to_bytes(SUM_BYTES, "big")
    ).digest()
    return digest, total


class SumTree:
    """In-memory Merkle-sum tree keeping every level, so k updates rehash only k paths.

    `_levels[0]` are the leaves; `_levels[l + 1][i]` is the parent of `_levels[l][2i]` and
    `_levels[l][2i + 1]`, or a copy of `_levels[l][2i]` when it has no right sibling.
    Mutations check the new root sum before changing anything: sums are non-negative, so no
    node exceeds the root, and rehashing can then never fail halfway.
    """

    def __init__(self, leaves: Iterable[tuple[bytes, int]] = ()) -> None:
        self._leaf_data: list[bytes] = []
        level: list[SumNode] = []
        for leaf_bytes, leaf_sum in leaves:
            self._leaf_data.append(bytes(leaf_bytes))
            level.append(leaf_node(leaf_bytes, leaf_sum))
        self._levels: list[list[SumNode]] = [level]
        while len(level) > 1:
            parents = [parent_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                parents.append(level[-1])
            self._levels.append(parents)
            level = parents

    @property
    def size(self) -> int:
        return len(self._leaf_data)

    def leaf(self, index: int) -> tuple[bytes, int]:
        """The account state bytes and sum stored at `index`."""
        self._check_index(index)
        return self._leaf_data[index], self._levels[0][index][1]

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise PreconditionFailed(f"Requires 0 <= index < size, got {index}, {self.size}")

    def root(self) -> SumNode:
        """(root hash, total sum) of the whole tree."""
        if not self._leaf_data:
            return empty_root(), 0
        return self._levels[-1][0]

    def append_leaf(self, leaf_bytes: bytes, leaf_sum: int) -> int:
        """Add the next account; returns its leaf index."""
        node = leaf_node(leaf_bytes, leaf_sum)
        check_sum(self.root()[1] + leaf_sum)  # see the class docstring
        index = self.size
        self._leaf_data.append(bytes(leaf_bytes))
        self._levels[0].append(node)
        self._rehash({index})
        return index

    def set_leaf(self, index: int, leaf_bytes: bytes, leaf_sum: int) -> None:
        """Replace one account's state and sum."""
        self.set_leaves([(index, leaf_bytes, leaf_sum)])

    def set_leaves(self, updates: Iterable[tuple[int, bytes, int]]) -> None:
        """Replace several leaves, rehashing each affected ancestor once.

        Validates every update before changing anything, so a bad one changes nothing.
        """
        staged: dict[int, tuple[bytes, SumNode]] = {}
        for index, leaf_bytes, leaf_sum in updates:
            self._check_index(index)
            staged[index] = (bytes(leaf_bytes), leaf_node(leaf_bytes, leaf_sum))
        removed = sum(self._levels[0][index][1] for index in staged)
        added = sum(node[1] for _, node in staged.values())
        check_sum(self.root()[1] - removed + added)  # see the class docstring
        for index, (leaf_bytes, node) in staged.items():
            self._leaf_data[index] = leaf_bytes
            self._levels[0][index] = node
        self._rehash(set(staged))

    def _rehash(self, dirty: set[int]) -> None:
        """Recompute the ancestors of the `dirty` leaf positions, growing levels as needed."""
        level = 0
        while dirty and len(self._levels[level]) > 1:
            if level + 1 == len(self._levels):
                self._levels.append([])
            children, parents = self._levels[level], self._levels[level + 1]
            dirty = {index >> 1 for index in dirty}
            for parent in sorted(dirty):
                left = 2 * parent
                node = (
                    parent_node(children[left], children[left + 1])
                    if left + 1 < len(children)
                    else children[left]
                )
                if parent == len(parents):
                    parents.append(node)
                else:
                    parents[parent] = node
            level += 1

    def proof(self, index: int) -> dict[str, object]:
        """Balance proof of leaf `index` against the current root."""
        self._check_index(index)
        path: list[dict[str, object]] = []
        position = index
        for nodes in self._levels[:-1]:
            sibling = position ^ 1
            # A missing right sibling means the node is carried up unhashed: no path entry.
            if sibling < len(nodes):
                sibling_hash, sibling_sum = nodes[sibling]
                path.append({"hash": sibling_hash.hex(), "sum": sibling_sum})
            position >>= 1
        leaf_bytes, leaf_sum = self.leaf(index)
        root_hash, root_sum = self.root()
        return {
            "leaf_index": index,
            "tree_size": self.size,
            "leaf_data": encode_base64(leaf_bytes),
            "leaf_sum": leaf_sum,
            "path": path,
            "root_hash": root_hash.hex(),
            "root_sum": root_sum,
        }


def _read_path_entry(entry: object) -> SumNode:
    fields = require_keys(entry, PATH_ENTRY_KEYS)
    return read_hash(fields, "hash"), check_sum(fields["sum"])


def verify_balance_proof(
    proof: object, expected_root_hash: bytes, expected_root_sum: int | None = None
) -> tuple[bytes, int]:
    """Check a balance proof against a trusted root; returns (account state bytes, leaf sum).

    Recomputes hash and sum from the leaf up; every sum on the way (leaf, siblings, parents,
    root) must lie in [0, 2**127). `expected_root_sum`, when given, is the trusted liabilities
    total (e.g. the `state-sum` of a verified checkpoint).
    """
    fields = require_keys(proof, BALANCE_PROOF_KEYS)
    leaf_index = read_count(fields, "leaf_index")
    tree_size = read_count(fields, "tree_size")
    try:
        leaf_bytes = decode_base64(fields["leaf_data"])  # type: ignore[arg-type]
    except ValueError as err:
        raise MalformedProof(f"leaf_data: {err}") from err
    leaf_sum = check_sum(fields["leaf_sum"])
    path = [_read_path_entry(entry) for entry in read_list(fields, "path")]
    claimed_hash = read_hash(fields, "root_hash")
    claimed_sum = check_sum(fields["root_sum"])

    computed_hash, computed_sum = root_from_inclusion_path(
        leaf_node(leaf_bytes, leaf_sum), leaf_index, tree_size, path, parent_node
    )
    if computed_hash != expected_root_hash:
        raise RootMismatch(expected_root_hash, computed_hash)
    if claimed_hash != expected_root_hash:
        raise RootMismatch(expected_root_hash, claimed_hash)
    if computed_sum != claimed_sum:
        raise SumMismatch(claimed_sum, computed_sum)
    if expected_root_sum is not None and computed_sum != expected_root_sum:
        raise SumMismatch(expected_root_sum, computed_sum)
    return leaf_bytes, leaf_sum
