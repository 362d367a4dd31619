"""Audit a whole event log against signed checkpoints: every hash, the chain, every root.

`LogAudit` consumes a shard's events in seq order (seq, canonical body bytes, stored chain
hash) and recomputes, from nothing but those bytes:
- each event's chain hash, `SHA-256(prev_hash || SHA-256(0x00 || body))`, and that the body
  is canonical JSON carrying its own seq and the previous hash (DESIGN 4);
- the RFC 9162 event-tree root at every checkpoint's tree size;
- the state (Merkle-sum) tree at those sizes, by replaying the legs (`proofs.ledger_state`),
  and so the checkpoint's `state-root` and `state-sum` (the outstanding liabilities);
- that consecutive checkpoints chain (`prev` is the hash of the previous signed note).

The checkpoints must already be signature-checked by the caller. It collects every finding
instead of stopping at the first, so one tampered event is reported once as a chain break and
then as the roots it changes. Standard library and `proofs.core` only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from proofs.core.checkpoint import Checkpoint, note_hash
from proofs.core.rfc9162 import empty_root, leaf_hash, node_hash
from proofs.core.sumtree import SumTree
from proofs.ledger_state import LedgerStates, StateLeafError, canonical_json

GENESIS_PREV_HASH = bytes(32)


@dataclass(frozen=True)
class Finding:
    """One divergence: where (an event seq or a checkpoint height) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class RootAccumulator:
    """RFC 9162 root of a growing list of leaf hashes in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        # Perfect subtrees covering the leaves so far, largest first, as (leaf count, hash).
        self._frontier: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        frontier = self._frontier
        frontier.append((1, leaf))
        while len(frontier) > 1 and frontier[-1][0] == frontier[-2][0]:
            (count, right), (_, left) = frontier.pop(), frontier.pop()
            frontier.append((2 * count, node_hash(left, right)))
        self.size += 1

    def root(self) -> bytes:
        if not self._frontier:
            return empty_root()
        result = self._frontier[-1][1]
        for _, digest in reversed(self._frontier[:-1]):
            result = node_hash(digest, result)
        return result


class LogAudit:
    def __init__(self, checkpoints: Sequence[tuple[str, Checkpoint]]) -> None:
        """`checkpoints`: (signed note, its verified checkpoint) pairs, in any order."""
        self.findings: list[Finding] = []
        self.checked_checkpoints = 0
        self.events = 0
        self._by_size: dict[int, list[Checkpoint]] = {}
        ordered = sorted(checkpoints, key=lambda pair: pair[1].height)
        pairs = zip(ordered, ordered[1:], strict=False)
        for (previous_note, previous), (current_note, current) in pairs:
            where = f"checkpoint height {current.height}"
            if current.height == previous.height:
                if previous_note != current_note:
                    self._find(where, "two different checkpoints carry this height")
            elif current.tree_size < previous.tree_size:
                self._find(where, f"tree size {current.tree_size} is smaller than "
                                  f"{previous.tree_size} at height {previous.height}")
            elif (
                current.height == previous.height + 1
                and current.prev_hash != note_hash(previous_note)
            ):
                self._find(where, "prev is not the hash of the checkpoint at height "
                                  f"{previous.height}")
        for _, checkpoint in ordered:
            self._by_size.setdefault(checkpoint.tree_size, []).append(checkpoint)
        self._tree = RootAccumulator()
        self._states: LedgerStates | None = LedgerStates()
        self._sums = SumTree()
        self._prev_hash = GENESIS_PREV_HASH
        self._ledger: str | None = None
        self._check_due()  # checkpoints of the empty tree, if any

    def _find(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message))

    def add(self, seq: int, body: bytes, stored_hash: bytes) -> None:
        """The next event of the log, as exported."""
        where = f"seq {seq}"
        if seq != self._tree.size:
            self._find(where, f"found where seq {self._tree.size} was due (gap or reorder)")
        leaf = leaf_hash(body)
        computed = hashlib.sha256(self._prev_hash + leaf).digest()
        if computed != stored_hash:
            self._find(where, f"body hashes to {computed.hex()} but the stored hash is "
                              f"{stored_hash.hex()} (event altered)")
        parsed = self._parse(where, body)
        if parsed is not None:
            if canonical_json(parsed) != body:
                self._find(where, "body is not in canonical JSON form")
            if parsed.get("seq") != seq:
                self._find(where, f"body carries seq {parsed.get('seq')!r}")
            if parsed.get("prev_hash") != self._prev_hash.hex():
                self._find(where, "body's prev_hash is not the previous event's hash")
            if self._ledger is None:
                self._ledger = parsed.get("ledger")
            elif parsed.get("ledger") != self._ledger:
                self._find(where, f"event of ledger {parsed.get('ledger')!r} in a log of "
                                  f"{self._ledger!r}")
            self._apply(where, parsed)
        # Continue the chain from what is stored, so one altered event is one chain finding.
        self._prev_hash = stored_hash
        self._tree.append(leaf)
        self.events += 1
        self._check_due()

    def _parse(self, where: str, body: bytes) -> dict | None:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError) as err:
            self._find(where, f"body is not JSON ({err})")
            parsed = None
        if parsed is not None and not isinstance(parsed, dict):
            self._find(where, "body is not a JSON object")
            parsed = None
        if parsed is None and self._states is not None:
            self._find(where, "state roots are not recomputed from here on")
            self._states = None
        return parsed

    def _apply(self, where: str, body: dict) -> None:
        if self._states is None:
            return
        try:
            self._states.apply(body)
        except (StateLeafError, KeyError, TypeError) as err:
            self._find(where, f"cannot replay the event ({err}); state roots are not "
                              "recomputed from here on")
            self._states = None

    def _state_root(self, where: str) -> tuple[bytes, int] | None:
        states = self._states
        if states is None:
            return None
        try:
            updates = [(position, *states.leaf(position)) for position in states.take_dirty()]
            existing = [update for update in updates if update[0] < self._sums.size]
            self._sums.set_leaves(existing)
            for _, leaf_bytes, leaf_sum in updates[len(existing):]:
                self._sums.append_leaf(leaf_bytes, leaf_sum)
        except (StateLeafError, ValueError) as err:
            self._find(where, f"state tree cannot be built: {err}")
            self._states = None
            return None
        return self._sums.root()

    def _check_due(self) -> None:
        due = self._by_size.pop(self._tree.size, None)
        if not due:
            return
        root = self._tree.root()
        for checkpoint in due:
            where = f"checkpoint height {checkpoint.height} (tree size {checkpoint.tree_size})"
            self.checked_checkpoints += 1
            if checkpoint.root_hash != root:
                self._find(where, f"signed root {checkpoint.root_hash.hex()} but the log "
                                  f"hashes to {root.hex()}")
            state = self._state_root(where)
            if state is None:
                continue
            state_root, state_sum = state
            if checkpoint.state_root != state_root:
                self._find(where, f"signed state root {checkpoint.state_root.hex()} but the "
                                  f"replayed accounts hash to {state_root.hex()}")
            if checkpoint.state_sum != state_sum:
                self._find(where, f"signed liabilities {checkpoint.state_sum} but the "
                                  f"replayed accounts sum to {state_sum}")

    def finish(self) -> list[Finding]:
        """All findings; checkpoints beyond the end of the log are findings too."""
        for size in sorted(self._by_size):
            for checkpoint in self._by_size[size]:
                self._find(
                    f"checkpoint height {checkpoint.height}",
                    f"signs a tree of {size} events but the log has only {self._tree.size}",
                )
        self._by_size.clear()
        return self.findings
