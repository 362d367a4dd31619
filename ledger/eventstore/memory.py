"""The in-memory event store: the port's semantics on lists and dicts, for fast unit tests.

Key invariant: the store keeps copies, never the writer's live objects. Events are kept as
their canonical bytes, account infos and hold states as orjson bytes and balance states as packed
snapshots (the RocksDB store's formats), so `load()` rebuilds a state from what was stored,
exactly as after a restart, and a test that passes here cannot lean on shared mutable objects.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from operator import attrgetter

import orjson

from ledger.core.chain import GENESIS_PREV_HASH, StoredEvent
from ledger.core.machine import (
    GroupOutcome,
    IdempotencyRecord,
    seq_named_by,
    touched_holds,
    unpack_snapshot,
)
from ledger.core.state import Account, Hold, LedgerState
from ledger.eventstore.port import AccountSnapshot, EventStore, EventStoreError


class MemoryEventStore(EventStore):
    def __init__(self, ledger: str) -> None:
        self.ledger = ledger
        self._closed = False
        self._log: list[StoredEvent] = []
        self._ts: list[int] = []  # ts by seq, non-decreasing: bisect answers seq_at_time
        # Per account, the seqs of the events touching it (ascending) and the snapshots after
        # each of them, as parallel lists for bisect.
        self._account_seqs: dict[str, list[int]] = {}
        self._account_snapshots: dict[str, list[bytes]] = {}
        self._idem: dict[bytes, bytes] = {}
        self._account_infos: dict[str, bytes] = {}
        self._holds: dict[str, bytes] = {}
        self._head: tuple[int, int, bytes] = (0, 0, GENESIS_PREV_HASH)

    def _check_open(self) -> None:
        if self._closed:
            raise EventStoreError("memory event store is closed")

    # -- writer side ---------------------------------------------------------------------------

    def load(self) -> LedgerState:
        self._check_open()
        state = LedgerState(self.ledger)
        accounts = [
            Account.restore(
                orjson.loads(info), unpack_snapshot(self._account_snapshots[account_id][-1]),
                self._account_seqs[account_id][-1],
            )
            for account_id, info in self._account_infos.items()
        ]
        for account in sorted(accounts, key=attrgetter("position")):
            state.add_account(account)
        holds = [Hold.from_dict(orjson.loads(data)) for data in self._holds.values()]
        for hold in sorted(holds, key=attrgetter("seq")):
            state.add_hold(hold)
        state.next_seq, state.last_ts, state.head_hash = self._head
        return state

    def write(self, outcome: GroupOutcome, state: LedgerState) -> None:
        self._check_open()
        events = outcome.events
        if events and events[0].seq != len(self._log):
            raise EventStoreError(
                f"group starts at seq {events[0].seq} but the log continues at {len(self._log)}"
            )
        for event in events:
            seq = event.seq
            self._log.append(StoredEvent(seq, event.data, event.hash))
            self._ts.append(state.last_ts)  # the group's clock reading, as in every event
            for account_id, snapshot in event.snapshots:
                self._account_seqs.setdefault(account_id, []).append(seq)
                self._account_snapshots.setdefault(account_id, []).append(snapshot)
            if event.type == "account_opened":
                account = state.accounts[event.body["details"]["account"]]
                self._account_infos[account.id] = orjson.dumps(account.info())
        for scope, record in outcome.records.items():
            self._idem[scope] = record.pack()
        for hold_id, hold in touched_holds(outcome.events, state).items():
            self._holds[hold_id] = orjson.dumps(hold.to_dict())
        self._head = (state.next_seq, state.last_ts, state.head_hash)

    def sync(self) -> None:
        self._check_open()  # memory has nothing to sync; a closed store refuses as on disk

    def idempotency_records(self, scopes: list[bytes]) -> dict[bytes, IdempotencyRecord]:
        self._check_open()
        return {
            scope: IdempotencyRecord.unpack(self._idem[scope])
            for scope in scopes if scope in self._idem
        }

    # -- readers -------------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        self._check_open()
        next_seq, _, head_hash = self._head
        return next_seq - 1, head_hash

    def read(self, after_seq: int = -1, limit: int | None = None) -> Iterator[StoredEvent]:
        self._check_open()
        start = max(after_seq + 1, 0)
        stop = None if limit is None else start + max(limit, 0)
        return iter(self._log[start:stop])

    def get(self, seq: int) -> StoredEvent | None:
        self._check_open()
        return self._log[seq] if 0 <= seq < len(self._log) else None

    def seq_of_event(self, event_id: str) -> int | None:
        self._check_open()
        seq = seq_named_by(event_id, self.ledger)
        if seq is None or seq >= len(self._log):
            return None
        return seq if orjson.loads(self._log[seq].body)["id"] == event_id else None

    def account_seqs(
        self, account_id: str, after_seq: int = -1, before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[int]:
        self._check_open()
        seqs = self._account_seqs.get(account_id, [])
        start = bisect_right(seqs, after_seq)
        stop = len(seqs) if before_seq is None else bisect_left(seqs, before_seq)
        if limit is not None:
            stop = min(stop, start + max(limit, 0))
        return seqs[start:stop]

    def account_snapshot_at(self, account_id: str, seq: int) -> AccountSnapshot | None:
        self._check_open()
        index = bisect_right(self._account_seqs.get(account_id, []), seq) - 1
        if index < 0:
            return None
        return unpack_snapshot(self._account_snapshots[account_id][index])

    def seq_at_time(self, ts: int) -> int:
        self._check_open()
        return bisect_right(self._ts, ts) - 1

    def close(self) -> None:
        self._closed = True
