"""The event-store port: what the writer and the readers need from a shard's storage.

One store holds one shard (ledger). Only the shard's writer calls `write` and `sync`; readers
may call the query methods from other threads at any time. Everything `write` writes for one group
commit becomes durable together, or not at all: the log entries, the indexes, the idempotency
records, the current account and hold states and the log head. Nothing is acknowledged to a
client before a `sync` that began after its group's `write` has returned.

Two implementations: `MemoryEventStore` for fast unit tests and `RocksEventStore` for real use.
`tests/unit/eventstore_contract.py` is the one contract both must pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from ledger.core.chain import StoredEvent
from ledger.core.machine import GroupOutcome, IdempotencyRecord
from ledger.core.state import LedgerState

AccountSnapshot = tuple[int, int, int, int, int, int]
"""(status code, available, held, bonded, fee, promo) of an account after an event."""


class EventStoreError(Exception):
    """Root of the event store's exceptions (I/O, corruption, misuse)."""


class EventStore(ABC):
    ledger: str

    # -- writer side ---------------------------------------------------------------------------

    @abstractmethod
    def load(self) -> LedgerState:
        """The shard's current state as last committed (accounts, holds, next seq, head hash,
        last ts), read from the stored current state, not by replaying the log."""

    @abstractmethod
    def write(self, outcome: GroupOutcome, state: LedgerState) -> None:
        """Write one group commit: `outcome.events` (already sealed), their index entries,
        `outcome.records`, and the states of the accounts and holds they touched as they now
        are in `state`, plus the new head. One atomic write, not yet durable: this store's
        readers may see it at once, and a crash before the next `sync` may lose it."""

    @abstractmethod
    def sync(self) -> None:
        """Make every group written so far durable. May run in another thread than `write`,
        at the same time (the writer decides its next group while the disk syncs the last).
        If it fails, the store refuses every later call: what reached the disk is known only
        after reopening it."""

    def append(self, outcome: GroupOutcome, state: LedgerState) -> None:
        """`write` and `sync`: one durable group commit."""
        self.write(outcome, state)
        self.sync()

    @abstractmethod
    def idempotency_records(self, scopes: list[bytes]) -> dict[bytes, IdempotencyRecord]:
        """The stored records of these scoped idempotency keys (absent keys are left out)."""

    # -- readers -------------------------------------------------------------------------------

    @abstractmethod
    def head(self) -> tuple[int, bytes]:
        """(last seq, its chain hash); (-1, 32 zero bytes) for an empty log."""

    @abstractmethod
    def read(self, after_seq: int = -1, limit: int | None = None) -> Iterator[StoredEvent]:
        """Events with seq > after_seq in seq order, at most `limit` of them."""

    @abstractmethod
    def get(self, seq: int) -> StoredEvent | None:
        """One event by seq."""

    @abstractmethod
    def seq_of_event(self, event_id: str) -> int | None:
        """The seq of the event with this id (index by event id)."""

    @abstractmethod
    def account_seqs(
        self, account_id: str, after_seq: int = -1, before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[int]:
        """Seqs of the events touching an account, ascending, after_seq < seq < before_seq."""

    @abstractmethod
    def account_snapshot_at(self, account_id: str, seq: int) -> AccountSnapshot | None:
        """The account's balance state right after the last event <= seq that touched it;
        None if the account did not exist yet. One index seek, no replay."""

    def account_snapshots_at(
        self, points: list[tuple[str, int]]
    ) -> list[AccountSnapshot | None]:
        """`account_snapshot_at` for many (account id, seq) points, in order. A store may
        answer faster when a seq is one of the account's own events, as a projector's are."""
        return [self.account_snapshot_at(account_id, seq) for account_id, seq in points]

    def account_now(self, account_id: str) -> tuple[AccountSnapshot | None, int]:
        """(the account's state at the head, the head's seq): a read of current balances,
        which sees every acknowledged write. A store that follows a writer from another
        process may answer from a faster source than its own log (`FollowerStore`)."""
        seq = self.head()[0]
        return self.account_snapshot_at(account_id, seq), seq

    @abstractmethod
    def seq_at_time(self, ts: int) -> int:
        """The last seq whose event ts is <= ts (nanoseconds); -1 if there is none."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; further calls are errors."""
