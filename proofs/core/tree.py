"""Append-only RFC 9162 Merkle tree over a node-store port, emitting DESIGN section 5 proofs.

Invariant: after appending leaves 0..n-1 the store holds, for every level l and every
i < n >> l, the perfect subtree node (l, i) covering leaves [i * 2**l, (i + 1) * 2**l), and
nothing the tree reads lies at or beyond n. Roots and proofs for any size <= n are derived
from these nodes alone (see `rfc9162`), so old checkpoints stay provable forever.

Node-store port (`NodeStore`): two methods, so a key-value backend is a few lines.
- `get(level, index)` returns the 32-byte hash of perfect node (level, index), or None.
- `put_many(items)` writes (level, index, hash) triples, overwriting; it should be atomic
  (one write batch) so a crash never leaves half a batch. A RocksDB backend would key nodes
  as b"<level>:<index>". Nodes at or beyond the tree size are never read, so leftovers of a
  batch whose surrounding transaction rolled back are harmless and get overwritten.
"""

import hashlib
from collections.abc import Iterable
from typing import Protocol

from proofs.core.encoding import HASH_SIZE
from proofs.core.errors import MissingNode, PreconditionFailed
from proofs.core.proof_json import consistency_proof_json, inclusion_proof_json
from proofs.core.rfc9162 import NODE_PREFIX, consistency_path, inclusion_path, root_at


class NodeStore(Protocol):
    """Port to persisted perfect-subtree hashes, keyed by (level, index)."""

    def get(self, level: int, index: int) -> bytes | None: ...

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None: ...


class MemoryNodeStore:
    """`NodeStore` in a dict, for tests, tools and the offline verifier."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes | None:
        return self._nodes.get((level, index))

    def put_many(self, items: Iterable[tuple[int, int, bytes]]) -> None:
        self._nodes.update(((level, index), digest) for level, index, digest in items)


class MerkleTree:
    """Append-only tree of leaf hashes backed by a `NodeStore`.

    `size` must be the number of leaves already in `store` (the caller persists it alongside,
    e.g. as the last sequence number); the tree reads back only the O(log n) right-edge
    nodes it needs to keep appending.
    """

    def __init__(self, store: NodeStore | None = None, size: int = 0) -> None:
        if size < 0:
            raise PreconditionFailed(f"Requires 0 <= size, got {size}")
        self._store: NodeStore = MemoryNodeStore() if store is None else store
        self._size = size
        # Roots of the perfect subtrees that make up the tree, largest (leftmost) first: one
        # per set bit of size. Appending only ever merges into these.
        self._frontier: list[bytes] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                self._frontier.append(self._get_node(level, start >> level))
                start += 1 << level

    @property
    def size(self) -> int:
        return self._size

    def _get_node(self, level: int, index: int) -> bytes:
        digest = self._store.get(level, index)
        if digest is None:
            raise MissingNode(f"node store has no node ({level}, {index})")
        return digest

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; returns its index."""
        self.extend([leaf_hash])
        return self._size - 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes in order with one `put_many`; amortised O(1) hashes per leaf.

        All or nothing: if the store raises, the tree keeps its previous size.
        """
        frontier = list(self._frontier)
        size = self._size
        items: list[tuple[int, int, bytes]] = []
        sha256 = hashlib.sha256  # `node_hash`, inlined below: about one per leaf
        for digest in leaf_hashes:
            if not isinstance(digest, bytes) or len(digest) != HASH_SIZE:
                raise PreconditionFailed(f"leaf hash must be {HASH_SIZE} bytes")
            items.append((0, size, digest))
            # Each trailing 1 bit of the index is a left sibling now completed by this leaf.
            index, level = size, 0
            while index & 1:
                digest = sha256(NODE_PREFIX + frontier.pop() + digest).digest()
                index >>= 1
                level += 1
                items.append((level, index, digest))
            frontier.append(digest)
            size += 1
        self._store.put_many(items)
        self._frontier = frontier
        self._size = size

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise PreconditionFailed(f"Requires 0 <= size <= {self._size}, got {size}")

    def root(self, size: int | None = None) -> bytes:
        """Root of the first `size` leaves (default: all)."""
        size = self._size if size is None else size
        self._check_size(size)
        return root_at(size, self._get_node)

    def inclusion_proof(self, index: int, size: int) -> dict[str, object]:
        """Inclusion proof of leaf `index` in the tree of `size` leaves (DESIGN section 5)."""
        self._check_size(size)
        path = inclusion_path(index, size, self._get_node)
        return inclusion_proof_json(
            leaf_index=index,
            tree_size=size,
            leaf_hash=self._get_node(0, index),
            path=path,
            root_hash=root_at(size, self._get_node),
        )

    def consistency_proof(self, first: int, second: int) -> dict[str, object]:
        """Proof that the tree of `first` leaves is a prefix of the one of `second`."""
        self._check_size(second)
        path = consistency_path(first, second, self._get_node)
        return consistency_proof_json(
            first_size=first,
            second_size=second,
            first_root=root_at(first, self._get_node),
            second_root=root_at(second, self._get_node),
            path=path,
        )
