"""The shards of this process: one RocksDB event store and one writer per ledger.

A ledger code names a shard; its data lives in `<root>/<CODE>/`. In embedded mode the web
process hosts every shard's writer in a thread (`ShardRegistry`); in distributed mode each
writer process hosts one (`manage.py ledger_writer`) and every other process follows the shards
read-only (`FollowerRegistry`: RocksDB secondary instances). Either way a shard's store is
opened read-write by exactly one process (RocksDB's lock enforces it).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ledger.core.chain import StoredEvent
from ledger.core.machine import Event, GroupOutcome, IdempotencyRecord
from ledger.core.state import LedgerState
from ledger.eventstore.port import AccountSnapshot, EventStore, EventStoreError
from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import Writer

log = logging.getLogger(__name__)

LEDGER_CODE = re.compile(r"[A-Z][A-Z0-9]{0,11}")


class UnknownLedger(LookupError):
    """No shard exists for this ledger code."""


def valid_ledger_code(code: str) -> bool:
    """Ledger codes are upper-case letters and digits (an ISO 4217 code, or a domain name)."""
    return isinstance(code, str) and LEDGER_CODE.fullmatch(code) is not None


class Shard:
    """A ledger's store and, in the process that owns it, its running writer."""

    def __init__(self, code: str, store: EventStore, writer: Writer | None) -> None:
        self.code = code
        self.store = store
        self.writer = writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        self.store.close()


class ShardRegistry:
    def __init__(
        self, root: Path, *, on_commit: Callable[[str, int], None] | None = None,
        on_durable: Callable[[str, list[Event], int], None] | None = None,
        sync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.on_commit = on_commit
        self.on_durable = on_durable
        self.sync = sync
        self._shards: dict[str, Shard] = {}
        self._lock = threading.Lock()

    def codes(self) -> list[str]:
        """Ledger codes with a shard on disk, opened or not."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if valid_ledger_code(p.name))

    def create(self, code: str) -> Shard:
        """Open the shard of `code`, creating it (with its genesis events) if it is new."""
        if not valid_ledger_code(code):
            raise ValueError(f"invalid ledger code {code!r}")
        with self._lock:
            shard = self._shards.get(code)
            if shard is None:
                shard = self._shards[code] = self._open(code)
            return shard

    def get(self, code: str) -> Shard:
        """The running shard of an existing ledger; raises `UnknownLedger` otherwise."""
        shard = self._shards.get(code)
        if shard is not None:
            return shard
        if not valid_ledger_code(code) or not (self.root / code).is_dir():
            raise UnknownLedger(code)
        return self.create(code)

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()

    def _open(self, code: str) -> Shard:
        self.root.mkdir(parents=True, exist_ok=True)
        store = RocksEventStore(self.root / code, code, sync=self.sync)
        on_commit = None
        if self.on_commit is not None:
            notify = self.on_commit

            def on_commit(last_seq: int) -> None:
                notify(code, last_seq)

        writer = Writer(store, on_commit=on_commit)
        if self.on_durable is not None:
            durable = self.on_durable
            writer.durable_listeners.append(
                lambda events, last_seq: durable(code, events, last_seq))
        try:
            writer.start()
        except Exception:
            store.close()
            raise
        return Shard(code, store, writer)


def shard_exists(root: Path, code: str) -> bool:
    """Whether a writer has created the shard of `code` under `root` (RocksDB's CURRENT)."""
    return valid_ledger_code(code) and (Path(root) / code / "CURRENT").is_file()


class FollowerStore(EventStore):
    """A shard's log as a process other than its writer sees it: a RocksDB secondary instance
    that catches up with the writer before it answers, so reads see every acknowledged write.

    `head_source()` returns the last seq the writer has acknowledged to any client (the
    `ledgerfs:head:<CODE>` key), None when that is unknown, or raises when it cannot be asked;
    the store catches up only when it is behind that seq, and on every read while the seq is
    unknown. A secondary instance does not always see what its primary flushed on closing
    (measured: the last groups before a writer stops stay invisible to it), so a store still
    behind a known head after catching up is opened again with `opener`.

    `current_source(account_id)`, when given, answers `account_now` without a catch-up: the
    account's published (snapshot, seq) (`redis_balances`), or None to read the store.
    """

    def __init__(
        self, opener: Callable[[], RocksEventStore], head_source: Callable[[], int | None],
        current_source: Callable[[str], tuple[AccountSnapshot, int] | None] | None = None,
    ) -> None:
        self._opener = opener
        self._store = opener()
        self.ledger = self._store.ledger
        self._head_source = head_source
        self._current_source = current_source
        self._lock = threading.Lock()
        self._retired: list[RocksEventStore] = []
        self.catch_ups = 0
        self.reopens = 0

    def catch_up(self, target: int | None = None) -> None:
        with self._lock:
            self._store.catch_up()
            self.catch_ups += 1
            if target is not None and self._store.head()[0] < target:
                self._reopen()

    def _reopen(self) -> None:
        # The old instance may still be read by a caller; it is closed at the next reopen.
        for store in self._retired:
            store.close()
        self._retired = [self._store]
        self._store = self._opener()
        self.reopens += 1

    def _fresh(self) -> RocksEventStore:
        try:
            target = self._head_source()
        except Exception:
            target = None
        if target is None or self._store.head()[0] < target:
            self.catch_up(target)
        return self._store

    def load(self) -> LedgerState:
        return self._fresh().load()

    def write(self, outcome: GroupOutcome, state: LedgerState) -> None:
        raise EventStoreError(f"the follower of ledger {self.ledger} is read-only")

    def sync(self) -> None:
        raise EventStoreError(f"the follower of ledger {self.ledger} is read-only")

    def idempotency_records(self, scopes: list[bytes]) -> dict[bytes, IdempotencyRecord]:
        return self._fresh().idempotency_records(scopes)

    def head(self) -> tuple[int, bytes]:
        return self._fresh().head()

    def read(self, after_seq: int = -1, limit: int | None = None) -> Iterator[StoredEvent]:
        return self._fresh().read(after_seq, limit)

    def get(self, seq: int) -> StoredEvent | None:
        store = self._store
        event = store.get(seq)
        return event if event is not None else self._fresh().get(seq)

    def seq_of_event(self, event_id: str) -> int | None:
        return self._fresh().seq_of_event(event_id)

    def account_seqs(
        self, account_id: str, after_seq: int = -1, before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[int]:
        return self._fresh().account_seqs(account_id, after_seq, before_seq, limit)

    def _holding(self, seq: int) -> RocksEventStore:
        """The instance to read at `seq`: the current one when it already holds that seq.

        Readers resolve the seq first (the balance API through head(), one catch-up) and then
        read at it; catching up again for the read cost a head lookup and a WAL replay."""
        store = self._store
        return store if seq <= store.head()[0] else self._fresh()

    def account_snapshot_at(self, account_id: str, seq: int) -> AccountSnapshot | None:
        return self._holding(seq).account_snapshot_at(account_id, seq)

    def account_snapshots_at(
        self, points: list[tuple[str, int]]
    ) -> list[AccountSnapshot | None]:
        return self._holding(max((seq for _, seq in points), default=-1)).account_snapshots_at(
            points
        )

    def account_now(self, account_id: str) -> tuple[AccountSnapshot | None, int]:
        if self._current_source is not None:
            try:
                current = self._current_source(account_id)
            except Exception:
                current = None  # the source is unreachable: the store answers
            if current is not None:
                return current
        return super().account_now(account_id)

    def seq_at_time(self, ts: int) -> int:
        return self._fresh().seq_at_time(ts)

    def close(self) -> None:
        for store in self._retired:
            store.close()
        self._store.close()


class FollowerRegistry:
    """The shards as seen by a process that writes none of them (distributed web, workers).

    Each shard is opened on first use as a RocksDB secondary instance under
    `<secondary_root>/<CODE>/<pid>-<random>` (removed again on close). A ledger exists here once
    its writer process (`manage.py ledger_writer --ledger CODE`) has created its shard.
    """

    def __init__(
        self, root: Path, secondary_root: Path, head_source: Callable[[str], int], *,
        writer_alive: Callable[[str], bool] | None = None, create_wait_seconds: float = 10.0,
        current_source: Callable[[str, str], tuple[AccountSnapshot, int] | None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.secondary_root = Path(secondary_root)
        self.head_source = head_source
        self.current_source = current_source
        self.writer_alive = writer_alive
        self.create_wait_seconds = create_wait_seconds
        self._shards: dict[str, Shard] = {}
        self._secondaries: list[Path] = []
        self._lock = threading.Lock()

    def codes(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if shard_exists(self.root, p.name))

    def get(self, code: str) -> Shard:
        shard = self._shards.get(code)
        if shard is not None:
            return shard
        if not shard_exists(self.root, code):
            raise UnknownLedger(code)
        with self._lock:
            shard = self._shards.get(code)
            if shard is None:
                shard = self._shards[code] = self._open(code)
            return shard

    def open_existing(self) -> list[str]:
        """Open every shard that exists now, ahead of the first request for it: the codes
        opened. One that cannot be opened is logged and left to be opened on first use.

        Why: opening a secondary instance replays the writer's WAL since its last flush. Under
        load that took 0.7-1.1 s (`python -m bench http-distributed`, two of three web workers
        opening the shard 4-6 s into the run), and on first use it ran on a web worker's event
        loop, so every request on that worker waited for it."""
        opened = []
        for code in self.codes():
            try:
                self.get(code)
            except EventStoreError as error:
                log.warning("ledger %s not opened at start-up: %s", code, error)
                continue
            opened.append(code)
        return opened

    def create(self, code: str) -> Shard:
        """The shard of `code` once its writer process has created it and serves it (with
        `writer_alive`: its heartbeat), so commands sent next find the writer. Only a writer
        creates shards (`ledger_writers` starts one for each newly registered ledger); this
        waits a little for one that is starting, then gives up."""
        if not valid_ledger_code(code):
            raise ValueError(f"invalid ledger code {code!r}")
        deadline = time.monotonic() + self.create_wait_seconds
        while not (shard_exists(self.root, code) and self._serving(code)):
            if time.monotonic() > deadline:
                from ledger.bus import WriterUnavailable

                raise WriterUnavailable(
                    f"no writer has created ledger {code}; start "
                    f"`manage.py ledger_writer --ledger {code}`"
                )
            time.sleep(0.1)
        return self.get(code)

    def _serving(self, code: str) -> bool:
        if self.writer_alive is None:
            return True
        try:
            return self.writer_alive(code)
        except Exception:
            return False  # Redis unreachable: not known to serve

    def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()
            for path in self._secondaries:
                shutil.rmtree(path, ignore_errors=True)
            self._secondaries.clear()

    def _open(self, code: str) -> Shard:
        def opener() -> RocksEventStore:
            secondary = self.secondary_root / code / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            secondary.mkdir(parents=True, exist_ok=True)
            self._secondaries.append(secondary)
            store = RocksEventStore(self.root / code, code, secondary_path=secondary)
            store.catch_up()
            return store

        source = self.current_source
        current = None if source is None else (lambda account_id: source(code, account_id))
        return Shard(
            code, FollowerStore(opener, lambda: self.head_source(code), current), None
        )
