"""The RocksDB event store: one database per shard, one column family per kind of record.

Key invariant: every group commit is ONE `WriteBatch` (`write`), and nothing of it is
acknowledged before a `sync` of the WAL that began after it has returned, so the log entries,
their indexes, the idempotency records, the touched account and hold states and the head are
durable together or not at all, and a reader never sees half a group.

Column families (all keys and values are raw bytes; integers are big-endian so that byte order
is numeric order):

| family     | key                                  | value                                   |
|------------|--------------------------------------|-----------------------------------------|
| log        | seq (8)                              | chain hash (32) || canonical body bytes |
| by_account | account id || 0x00 || seq (8)        | snapshot `>B5q` (status, 5 buckets)     |
| by_time    | ts (8) || first seq of the group (8) | last seq of the group (8)               |
| idem       | scoped idempotency key               | `IdempotencyRecord.pack()`              |
| account_info | account id                         | orjson of `Account.info()` (once)       |
| holds      | hold id                              | orjson of `Hold.to_dict()`              |
| meta       | b"head"                              | `>Qq32s`: next seq, last ts, head hash  |
| meta       | b"ledger"                            | the ledger code (checked on open)       |

`by_time` is sparse, one entry per group commit, because the state machine stamps every event
of a group with the same clock reading and that clock never runs backwards (ts is
non-decreasing in seq order). The events with ts <= T are therefore a prefix of the log made of
whole groups, and the group entry found by one `seek_for_prev` holds the last seq of that prefix.

Account ids contain no NUL byte, so the 0x00 separator keeps one account's `by_account` keys
contiguous and apart from any other account whose id extends this one.

What the store does not write, because it is already there: an account's current state is its
last `by_account` entry (the snapshot after the last event that touched it, at that seq), and an
event id names its seq (`evt_<ledger>_<seq as 12 hex digits><random>`), so neither needs a
family of its own. Every key written per event costs the writer about a microsecond; these two
were a third of them. Databases written with the older layout still open: families that are no
longer used are opened and left alone.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path

import orjson
from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from ledger.core.chain import GENESIS_PREV_HASH, StoredEvent
from ledger.core.machine import (
    Event,
    GroupOutcome,
    IdempotencyRecord,
    seq_named_by,
    touched_holds,
)
from ledger.core.state import Account, Hold, LedgerState
from ledger.eventstore._rocksbatch import configure, fill
from ledger.eventstore.port import AccountSnapshot, EventStore, EventStoreError

configure(event=Event, record=IdempotencyRecord)

COLUMN_FAMILIES = (
    "log", "by_account", "by_time", "idem", "account_info", "holds", "meta",
)
HASH_SIZE = 32
HEAD_KEY = b"head"
LEDGER_KEY = b"ledger"

_SEQ = struct.Struct(">Q")
_TIME_KEY = struct.Struct(">QQ")
_SNAPSHOT = struct.Struct(">B5q")
_HEAD = struct.Struct(">Qq32s")
_MAX_KEY_INT = 2**64 - 1
_ACCOUNT_SEP = b"\x00"
# read() never holds a RocksDB iterator across a yield: a half-consumed reader would otherwise
# pin old files and keep the database open after close(). It re-seeks once per chunk instead.
_READ_CHUNK = 1024
# Bits per key of the idempotency family's bloom filter: most keys the writer looks up are new,
# and a filter answers "absent" without reading a data block (about 1% false positives).
_IDEM_BLOOM_BITS_PER_KEY = 10
# The same question asked of the family's memtables, where the newest keys are: without a
# filter every absent key costs a skip-list search (`SkipListRep::Iterator::Seek` and its key
# comparisons in `perf record` of the writer thread). A filter of 2% of the write buffer gives
# about 10 bits per key when the memtable is full of 38-byte idempotency records, like the table
# filter above. Engine benchmark, two alternating pairs: 95,540 / 97,705 / 93,106 / 99,316
# transfers/s without it, 99,773 / 101,412 / 99,650 / 100,967 with 10%; 2% and 10% alike.
_IDEM_MEMTABLE_BLOOM_RATIO = 0.02
# The family's write buffer, smaller than the 64 MiB default: clients' keys (UUIDs, say) land
# anywhere in the memtable's skip list, and a smaller list stays in the CPU's caches. With
# random 32-character keys, engine benchmark, `append` 5.53 / 5.50 -> 4.91 / 5.00 µs of the
# writer's CPU per transfer at 64 / 8 MiB (alternating); the multi-get, which then searches more
# level-0 files, 0.50 -> 0.63 µs. 4 MiB was no better than 8.
_IDEM_WRITE_BUFFER_BYTES = 8 << 20
# The as-of family's write buffer, for the same reason: each transfer inserts two keys, one per
# account, anywhere among the accounts. It matters most where groups are small and the writer
# shares its core with the bus and projector threads (distributed mode), since a large group's
# keys, sorted, are inserted in one sweep. `python -m bench http-distributed`, two alternating
# pairs: 42,267 / 42,746 / 43,230 / 44,028 transfers/s at 64 MiB, 45,575 / 45,177 / 46,346 /
# 47,824 at 16 (writer process 21.5 -> 20.1 µs per transfer); 8 MiB was worse than 16, 32 alike.
# Engine, one pair: `append` 4.43 / 4.09 -> 3.88 / 3.81 µs per transfer.
_BY_ACCOUNT_WRITE_BUFFER_BYTES = 16 << 20


def _family_options(name: str) -> Options:
    options = Options(raw_mode=True)
    if name == "by_account":
        options.set_write_buffer_size(_BY_ACCOUNT_WRITE_BUFFER_BYTES)
    elif name == "idem":
        table = BlockBasedOptions()
        table.set_bloom_filter(_IDEM_BLOOM_BITS_PER_KEY, False)
        options.set_block_based_table_factory(table)
        options.set_memtable_prefix_bloom_ratio(_IDEM_MEMTABLE_BLOOM_RATIO)
        options.set_memtable_whole_key_filtering(True)
        options.set_write_buffer_size(_IDEM_WRITE_BUFFER_BYTES)
    return options


class RocksEventStore(EventStore):
    """A shard's event store in the RocksDB database at `path`.

    `sync=False` skips the WAL fsync (only for benchmarks and throwaway data: a power loss may
    then lose acknowledged groups). With `sync=True` a group's batch is written to the WAL
    unsynced and the WAL then synced by `flush_wal`: rocksdict keeps the GIL through a synced
    `write`, fsync included, but lets it go in `flush_wal`, so the writer process's other
    threads (bus, replies, projector) run while the disk works. If that sync fails, the store
    refuses every later call: the group is in RocksDB's memtable but perhaps not on disk, and
    only reopening the shard shows what is. `read_only=True` opens the database read-only; with
    `secondary_path` it is opened as a secondary instance instead, which follows a running
    writer through `catch_up()`.
    """

    def __init__(
        self, path: str | Path, ledger: str, *, sync: bool = True, read_only: bool = False,
        secondary_path: str | Path | None = None,
    ) -> None:
        self.ledger = ledger
        self.path = Path(path)
        self._closed = False
        writable = not read_only and secondary_path is None
        options = Options(raw_mode=True)
        if writable:
            options.create_if_missing(True)
            options.create_missing_column_families(True)
            access = AccessType.read_write()
        elif secondary_path is not None:
            # A secondary instance must keep every table file open (RocksDB's requirement).
            options.set_max_open_files(-1)
            access = AccessType.secondary(str(secondary_path))
        else:
            # The writer may be running: read its WAL instead of refusing to open.
            access = AccessType.read_only(False)
        families = {name: _family_options(name) for name in COLUMN_FAMILIES}
        try:
            if (self.path / "CURRENT").exists():
                for name in Rdict.list_cf(str(self.path), Options(raw_mode=True)):
                    families.setdefault(name, _family_options(name))
            families.pop("default", None)
            self._db = Rdict(str(self.path), options, families, access)
        except Exception as exc:  # rocksdict raises plain Exception for I/O and lock errors
            raise EventStoreError(f"cannot open event store at {self.path}: {exc}") from exc
        db = self._db
        self._log = db.get_column_family("log")
        self._by_account = db.get_column_family("by_account")
        self._by_time = db.get_column_family("by_time")
        self._idem = db.get_column_family("idem")
        self._account_info = db.get_column_family("account_info")
        self._holds = db.get_column_family("holds")
        self._meta = db.get_column_family("meta")
        self._handles = tuple(db.get_column_family_handle(name) for name in COLUMN_FAMILIES)
        self._sync = sync
        self._write_options = WriteOptions()
        self._write_options.sync = sync
        self._group_write_options = WriteOptions()
        self._group_write_options.sync = False  # `sync` syncs the WAL
        self._unsynced: str | None = None  # why the store refuses calls after a failed sync
        self._check_ledger(writable)
        self._next_seq = self._read_head()[0]

    def _check_ledger(self, writable: bool) -> None:
        stored = self._meta.get(LEDGER_KEY)
        if stored is None and writable:
            self._meta.put(LEDGER_KEY, self.ledger.encode(), self._write_options)
        elif stored != self.ledger.encode():
            self.close()
            found = "no ledger" if stored is None else f"ledger {stored.decode()!r}"
            raise EventStoreError(f"{self.path} holds {found}, not ledger {self.ledger!r}")

    def _check_open(self) -> None:
        if self._closed:
            raise EventStoreError(f"event store at {self.path} is closed")
        if self._unsynced is not None:
            raise EventStoreError(self._unsynced)

    def _read_head(self) -> tuple[int, int, bytes]:
        data = self._meta.get(HEAD_KEY)
        if data is None:
            return 0, 0, GENESIS_PREV_HASH
        return _HEAD.unpack(data)

    # -- writer side ---------------------------------------------------------------------------

    def load(self) -> LedgerState:
        self._check_open()
        state = LedgerState(self.ledger)
        # An account's state is its last as-of entry: one backward seek per account.
        accounts = []
        it = self._by_account.iter()
        for key, info in self._account_info.items():
            prefix = key + _ACCOUNT_SEP
            it.seek_for_prev(prefix + _SEQ.pack(_MAX_KEY_INT))
            if not it.valid() or it.key()[:-8] != prefix:
                raise EventStoreError(f"account {key!r} has no balance state")
            last_seq = _SEQ.unpack(it.key()[-8:])[0]
            accounts.append(
                Account.restore(orjson.loads(info), _SNAPSHOT.unpack(it.value()), last_seq)
            )
        del it

        # Keys are sorted by id; the state keeps accounts in opening order like the writer's.
        for account in sorted(accounts, key=attrgetter("position")):
            state.add_account(account)
        holds = [Hold.from_dict(orjson.loads(data)) for data in self._holds.values()]
        for hold in sorted(holds, key=attrgetter("seq")):
            state.add_hold(hold)
        state.next_seq, state.last_ts, state.head_hash = self._read_head()
        return state

    def write(self, outcome: GroupOutcome, state: LedgerState) -> None:
        self._check_open()
        events = outcome.events
        if events and events[0].seq != self._next_seq:
            raise EventStoreError(
                f"group starts at seq {events[0].seq} but the log continues at "
                f"{self._next_seq}"
            )
        log, by_account, by_time, idem, account_info, holds, meta = self._handles
        batch = WriteBatch(raw_mode=True)
        put = batch.put
        # The per-event keys (log, by_account, idem) are built and put in key order by the
        # compiled `fill` (see _rocksbatch.c). It hands back the events that are not plain
        # transfers, the only ones that may need more: an opened account, a hold.
        others = fill(put, events, outcome.records, log, by_account, idem)
        for event in others:
            if event.type == "account_opened":
                # What never changes about an account is written once, when it opens.
                account = state.accounts[event.body["details"]["account"]]
                put(account.id.encode(), orjson.dumps(account.info()), account_info)
        if events:
            # Every event of a group carries the group's clock reading, the state's last ts.
            put(_TIME_KEY.pack(state.last_ts, events[0].seq), _SEQ.pack(events[-1].seq), by_time)
        for hold_id, hold in touched_holds(others, state).items():
            put(hold_id.encode(), orjson.dumps(hold.to_dict()), holds)
        put(HEAD_KEY, _HEAD.pack(state.next_seq, state.last_ts, state.head_hash), meta)
        try:
            self._db.write(batch, self._group_write_options)
        except Exception as exc:  # rocksdict raises plain Exception for I/O errors
            raise EventStoreError(f"write of seq {self._next_seq}.. failed: {exc}") from exc
        self._next_seq = state.next_seq

    def sync(self) -> None:
        """Sync the WAL (RocksDB's FlushWAL(sync=true): every WAL file written since the last
        sync, and the WAL directory after a new file; safe beside a concurrent `write`, whose
        record the next sync covers); the GIL is released meanwhile. A store opened with
        `sync=False` skips it."""
        self._check_open()
        if not self._sync:
            return
        try:
            self._db.flush_wal(True)
        except Exception as exc:
            self._unsynced = (
                f"event store at {self.path}: syncing the WAL up to seq {self._next_seq - 1} "
                f"failed ({exc}); what is durable is known only after reopening the shard")
            raise EventStoreError(self._unsynced) from exc

    def idempotency_records(self, scopes: list[bytes]) -> dict[bytes, IdempotencyRecord]:
        self._check_open()
        if not scopes:
            return {}
        unpack = IdempotencyRecord.unpack
        return {
            scope: unpack(data)
            for scope, data in zip(scopes, self._idem.get(scopes), strict=True)
            if data is not None
        }

    # -- readers -------------------------------------------------------------------------------

    def head(self) -> tuple[int, bytes]:
        self._check_open()
        next_seq, _, head_hash = self._read_head()
        return next_seq - 1, head_hash

    def read(self, after_seq: int = -1, limit: int | None = None) -> Iterator[StoredEvent]:
        self._check_open()
        return self._read(max(after_seq + 1, 0), limit)

    def _read(self, seq: int, limit: int | None) -> Iterator[StoredEvent]:
        remaining = limit
        while remaining is None or remaining > 0:
            wanted = _READ_CHUNK if remaining is None else min(remaining, _READ_CHUNK)
            chunk = self._read_chunk(seq, wanted)
            yield from chunk
            if len(chunk) < wanted:
                return
            seq = chunk[-1].seq + 1
            if remaining is not None:
                remaining -= len(chunk)

    def _read_chunk(self, seq: int, count: int) -> list[StoredEvent]:
        self._check_open()
        chunk = []
        unpack_seq = _SEQ.unpack
        for key, value in self._log.items(from_key=_SEQ.pack(seq)):
            chunk.append(StoredEvent(unpack_seq(key)[0], value[HASH_SIZE:], value[:HASH_SIZE]))
            if len(chunk) == count:
                break
        return chunk

    def get(self, seq: int) -> StoredEvent | None:
        self._check_open()
        if seq < 0:
            return None
        value = self._log.get(_SEQ.pack(seq))
        if value is None:
            return None
        return StoredEvent(seq, value[HASH_SIZE:], value[:HASH_SIZE])

    def seq_of_event(self, event_id: str) -> int | None:
        seq = seq_named_by(event_id, self.ledger)
        if seq is None:
            return None
        stored = self.get(seq)
        # The id names a seq; only the event stored there says whether it is this event.
        if stored is None or orjson.loads(stored.body)["id"] != event_id:
            return None
        return seq

    def account_seqs(
        self, account_id: str, after_seq: int = -1, before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[int]:
        self._check_open()
        prefix = account_id.encode() + _ACCOUNT_SEP
        end = _MAX_KEY_INT if before_seq is None else before_seq
        it = self._by_account.iter()
        it.seek(prefix + _SEQ.pack(max(after_seq + 1, 0)))
        seqs: list[int] = []
        unpack_seq = _SEQ.unpack
        while it.valid() and (limit is None or len(seqs) < limit):
            key = it.key()
            if key[:-8] != prefix:
                break
            seq = unpack_seq(key[-8:])[0]
            if seq >= end:
                break
            seqs.append(seq)
            it.next()
        return seqs

    def account_snapshot_at(self, account_id: str, seq: int) -> AccountSnapshot | None:
        self._check_open()
        if seq < 0:
            return None
        prefix = account_id.encode() + _ACCOUNT_SEP
        it = self._by_account.iter()
        it.seek_for_prev(prefix + _SEQ.pack(min(seq, _MAX_KEY_INT)))
        if not it.valid() or it.key()[:-8] != prefix:
            return None
        return _SNAPSHOT.unpack(it.value())

    def account_snapshots_at(
        self, points: list[tuple[str, int]]
    ) -> list[AccountSnapshot | None]:
        # A point at one of the account's own events names its as-of key exactly: one
        # multi-get answers all of those (an iterator and a seek per account cost about three
        # times as much), and only the others are sought one by one.
        self._check_open()
        keys = [
            account_id.encode() + _ACCOUNT_SEP + _SEQ.pack(min(max(seq, 0), _MAX_KEY_INT))
            for account_id, seq in points
        ]
        unpack = _SNAPSHOT.unpack
        found = self._by_account.get(keys) if keys else []
        return [
            unpack(value) if value is not None and seq >= 0
            else self.account_snapshot_at(account_id, seq)
            for (account_id, seq), value in zip(points, found, strict=True)
        ]

    def seq_at_time(self, ts: int) -> int:
        self._check_open()
        if ts < 0:
            return -1
        it = self._by_time.iter()
        # The largest key <= (ts, max) is the last group whose ts is <= ts (module docstring).
        it.seek_for_prev(_TIME_KEY.pack(min(ts, _MAX_KEY_INT), _MAX_KEY_INT))
        return _SEQ.unpack(it.value())[0] if it.valid() else -1

    def catch_up(self) -> None:
        """Follow the writer: a secondary instance reads what the primary wrote since."""
        self._check_open()
        self._db.try_catch_up_with_primary()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Column-family views and handles keep the database open; drop them all first.
        for family in (
            self._log, self._by_account, self._by_time, self._idem, self._account_info,
            self._holds, self._meta,
        ):
            family.close()
        self._handles = ()
        self._db.close()
