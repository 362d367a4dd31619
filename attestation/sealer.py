"""Sealing: new events into the event tree, account states into the state tree, signed blocks.

`Sealer.seal()` reads the events after the sealed size from the shard's event store, checks
they continue the hash chain from the last sealed event (it never signs a log it cannot
verify), appends their leaf hashes (`ledger.core.chain.leaf_hash`, the RFC 9162 leaf) to the
event tree, replays their legs into the state leaves (`proofs.ledger_state`), and writes the
block header (chained to the previous header's hash) and the C2SP checkpoint signed with the
shard's key, all in one `SealStore.write_seal`. In-memory trees are rebuilt from disk if
anything fails half-way, so memory never runs ahead of what is durable.

`SealReader` serves proofs from a seal store at any sealed size or height; the sealer is one.
No Django here: the sealer runs in the web process (embedded mode), a Celery worker or a
benchmark alike.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from attestation.store import CheckpointRecord, SealHead, SealNodeStore, SealStore
from ledger.core.canonical import encode as canonical_encode
from ledger.core.chain import ChainBroken, verified
from ledger.eventstore.port import EventStore
from proofs.core.checkpoint import Checkpoint, note_hash, sign_checkpoint
from proofs.core.rfc9162 import root_from_leaf_hashes
from proofs.core.sumtree import SumTree
from proofs.core.tree import MerkleTree
from proofs.ledger_state import LedgerStates, decode_leaf

MAX_BLOCK_EVENTS = 50_000
"""Events sealed in one block at most; a backlog becomes several blocks in a row."""

_INCREMENTAL_STATE_BLOCKS = 4_096
"""A reader's cached state tree is moved forward block by block up to this distance."""


class AttestationError(Exception):
    """Root of the attestation app's exceptions. `code` is stable for API clients."""

    code = "attestation_error"


class SealRefused(AttestationError):
    """The event log does not continue what was sealed (altered, truncated or foreign)."""

    code = "seal_refused"


class NotSealed(AttestationError):
    """The requested event, size, height or account is not covered by a seal (yet)."""

    code = "not_sealed"


@dataclass(frozen=True)
class SigningKey:
    """A shard's checkpoint key: origin (= key name) and the signed-note key strings."""

    origin: str
    signer: str
    verifier: str


@dataclass(frozen=True)
class SealResult:
    header: dict
    checkpoint: CheckpointRecord


def header_hash(header: dict) -> bytes:
    """SHA-256 of the header's canonical JSON: what the next header's `prev_header_hash` is."""
    return hashlib.sha256(canonical_encode(header)).digest()


class SealReader:
    """Proofs from a seal store. Everything at or below the store's head is immutable."""

    def __init__(self, seals: SealStore) -> None:
        self.seals = seals
        self.ledger = seals.ledger
        self._state_lock = threading.Lock()
        self._state_cache: tuple[int, SumTree] | None = None

    def head(self) -> SealHead:
        return self.seals.head()

    def _tree(self, head: SealHead) -> MerkleTree:
        return MerkleTree(SealNodeStore(self.seals), head.tree_size)

    def _check_size(self, tree_size: int, head: SealHead) -> None:
        if not 0 < tree_size <= head.tree_size:
            raise NotSealed(
                f"tree size {tree_size} is not sealed (sealed sizes: 1..{head.tree_size})"
            )

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> dict[str, object]:
        """Inclusion of event `seq` in the sealed tree of `tree_size` (default: latest)."""
        head = self.head()
        tree_size = head.tree_size if tree_size is None else tree_size
        self._check_size(tree_size, head)
        if not 0 <= seq < tree_size:
            raise NotSealed(f"event seq {seq} is not in the tree of size {tree_size}")
        return self._tree(head).inclusion_proof(seq, tree_size)

    def consistency_proof(self, first: int, second: int | None = None) -> dict[str, object]:
        head = self.head()
        second = head.tree_size if second is None else second
        self._check_size(second, head)
        if not 0 < first <= second:
            raise NotSealed(f"Requires 0 < first <= second, got {first}, {second}")
        return self._tree(head).consistency_proof(first, second)

    def checkpoint(self, height: int | None = None) -> CheckpointRecord:
        head = self.head()
        height = head.height if height is None else height
        record = self.seals.checkpoint(height) if 0 < height <= head.height else None
        if record is None:
            raise NotSealed(f"no checkpoint at height {height} (sealed: 1..{head.height})")
        return record

    def block(self, height: int) -> dict:
        block = self.seals.block(height) if 0 < height <= self.head().height else None
        if block is None:
            raise NotSealed(f"no block at height {height}")
        return block

    def balance_proof(self, account_id: str, height: int | None = None) -> tuple[int, dict]:
        """(height, balance proof of the account) against that block's state root."""
        height = self.head().height if height is None else height
        block = self.block(height)
        position = self.seals.position(account_id)
        if position is None or position >= block["state_size"]:
            raise NotSealed(f"account {account_id} is not in the state sealed at height {height}")
        return height, self._state_proof(height, block, position)

    def _state_proof(self, height: int, block: dict, position: int) -> dict:
        with self._state_lock:
            tree = self._state_tree(height, block["state_size"])
            return tree.proof(position)

    def _state_tree(self, height: int, state_size: int) -> SumTree:
        """The state tree as of `height`, moved forward from the cached one when close."""
        cached = self._state_cache
        if cached is not None and cached[0] == height:
            return cached[1]
        if cached is not None and 0 < height - cached[0] <= _INCREMENTAL_STATE_BLOCKS:
            tree = cached[1]
            positions = sorted({p for h in range(cached[0] + 1, height + 1)
                                for p in self.seals.touched(h)})
            updates = [(p, self.seals.leaf_at(p, height)) for p in positions]
            tree.set_leaves(
                [(p, leaf, decode_leaf(leaf).liability()) for p, leaf in updates if p < tree.size]
            )
            for p, leaf in updates:
                if p >= tree.size:
                    tree.append_leaf(leaf, decode_leaf(leaf).liability())
        else:
            leaves = self.seals.leaves_at(height, state_size)
            tree = SumTree((leaf, decode_leaf(leaf).liability()) for leaf in leaves)
        self._state_cache = (height, tree)
        return tree


class Sealer(SealReader):
    """The one sealer of a shard: appends blocks to its seal store (opened read-write)."""

    def __init__(
        self, events: EventStore, seals: SealStore, key: SigningKey, *,
        clock: Callable[[], int] = time.time_ns, max_block_events: int = MAX_BLOCK_EVENTS,
    ) -> None:
        super().__init__(seals)
        self.events = events
        self.key = key
        self.clock = clock
        self.max_block_events = max_block_events
        self._lock = threading.RLock()
        self._load()

    def _load(self) -> None:
        """Rebuild the in-memory trees from the seal store and check them against the head."""
        head = self._head = self.seals.head()
        self._nodes = SealNodeStore(self.seals)
        self._event_tree = MerkleTree(self._nodes, head.tree_size)
        leaves = [decode_leaf(data) for data in self.seals.leaves_at(head.height, head.state_size)]
        self._states = LedgerStates(leaves)
        self._sums = SumTree(self._states.leaf(p) for p in range(len(leaves)))
        if head.height:
            block = self.seals.block(head.height)
            if block is None or (
                block["tree_root"] != self._event_tree.root().hex()
                or block["state_root"] != self._sums.root()[0].hex()
            ):
                raise AttestationError(
                    f"seal store of {self.ledger} does not match its head at height "
                    f"{head.height}: restore it from a backup or rebuild it"
                )

    def head(self) -> SealHead:
        return self._head

    def seal(self) -> SealResult | None:
        """Seal the events committed since the last seal (at most `max_block_events`)."""
        with self._lock:
            head = self._head
            self._check_sealed_prefix(head)
            events = list(self.events.read(head.tree_size - 1, self.max_block_events))
            if not events:
                return None
            try:
                return self._seal(head, events)
            except BaseException:
                self._load()
                raise

    def _check_sealed_prefix(self, head: SealHead) -> None:
        if head.tree_size == 0:
            return
        last = self.events.get(head.tree_size - 1)
        if last is None:
            raise SealRefused(
                f"ledger {self.ledger}: the event log ends before the sealed size "
                f"{head.tree_size}"
            )
        if last.hash.hex() != head.last_event_hash:
            raise SealRefused(
                f"ledger {self.ledger}: sealed event {last.seq} now has hash {last.hash.hex()}, "
                f"sealed as {head.last_event_hash}"
            )

    def _seal(self, head: SealHead, events: list) -> SealResult:
        # Each event is applied as soon as the chain up to it is verified; if a later one
        # fails, `seal` reloads the trees from disk, so nothing unsigned stays in memory.
        # (Bodies are not kept: holding a block's worth of parsed bodies slowed parsing 3x.)
        leaves = []
        states = self._states
        try:
            for _, body, leaf in verified(
                events, bytes.fromhex(head.last_event_hash), head.tree_size
            ):
                leaves.append(leaf)
                states.apply(body)
        except ChainBroken as err:
            raise SealRefused(f"ledger {self.ledger}: {err}") from err
        self._event_tree.extend(leaves)
        updates = [(position, *states.leaf(position)) for position in states.take_dirty()]
        existing = [update for update in updates if update[0] < self._sums.size]
        self._sums.set_leaves(existing)
        added = updates[len(existing):]
        for _, leaf_bytes, leaf_sum in added:
            self._sums.append_leaf(leaf_bytes, leaf_sum)
        state_root, state_sum = self._sums.root()

        height = head.height + 1
        tree_size = self._event_tree.size
        tree_root = self._event_tree.root()
        now = self.clock()
        header = {
            "ledger": self.ledger,
            "height": height,
            "first_seq": events[0].seq,
            "last_seq": events[-1].seq,
            "block_root": root_from_leaf_hashes(leaves).hex(),
            "tree_size": tree_size,
            "tree_root": tree_root.hex(),
            "state_size": self._sums.size,
            "state_root": state_root.hex(),
            "state_sum": state_sum,
            "prev_header_hash": head.header_hash,
            "time_ns": now,
        }
        checkpoint = Checkpoint(
            origin=self.key.origin, tree_size=tree_size, root_hash=tree_root, height=height,
            state_root=state_root, state_sum=state_sum,
            prev_hash=bytes.fromhex(head.note_hash), time_ns=now,
        )
        note = sign_checkpoint(checkpoint, self.key.signer)
        record = CheckpointRecord(height, note, self.key.verifier)
        new_head = SealHead(
            tree_size=tree_size, height=height, state_size=self._sums.size,
            last_event_hash=events[-1].hash.hex(), header_hash=header_hash(header).hex(),
            note_hash=note_hash(note).hex(),
        )
        self.seals.write_seal(
            head=new_head,
            nodes=self._nodes.take(),
            leaves=[(position, leaf_bytes) for position, leaf_bytes, _ in updates],
            new_accounts=[(states.leaves[position].id, position) for position, _, _ in added],
            header=header,
            checkpoint=record,
        )
        self._head = new_head
        return SealResult(header, record)

    def _state_proof(self, height: int, block: dict, position: int) -> dict:
        with self._lock:
            if height == self._head.height:
                return self._sums.proof(position)
        return super()._state_proof(height, block, position)
