"""The single writer on a real RocksDB shard: group commit, durability, recovery."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import rocksdict

from ledger import interpreter
from ledger.core.chain import ChainBroken
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.replay import compare_states, replay
from ledger.writer import (
    PART_COMMANDS,
    WRITE_COMMANDS,
    PendingRequest,
    WriteFailed,
    Writer,
    WriterStopped,
)
from tests.support.failing_disk import SyncFails

LEDGER = "EUR"
SECOND = 1_000_000_000


def acc(name: str) -> str:
    return account_id_for(LEDGER, f"did:{name}")


def open_and_fund(writer: Writer, names: list[str], amount: int = 1_000) -> None:
    opens = [Command("open_account", f"open-{n}", did=f"did:{n}") for n in names]
    mints = [Command("mint", f"mint-{n}", account=acc(n), amount=amount) for n in names]
    results = writer.execute(Request(opens + mints))
    assert all(r.ok for r in results), results


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "EUR"


@pytest.fixture
def writer(path: Path):
    store = RocksEventStore(path, LEDGER)
    writer = Writer(store).start()
    yield writer
    writer.stop()
    store.close()


def test_concurrent_clients_share_group_commits_and_everything_is_durable(writer, path):
    names = [f"u{i}" for i in range(20)]
    open_and_fund(writer, names)
    failures: list[str] = []

    def client(number: int) -> None:
        for batch in range(25):
            commands = [
                Command("transfer", f"c{number}-b{batch}-{i}", client=f"client-{number}",
                        account=acc(names[(number + i) % 20]), to=acc(names[(number + i + 1) % 20]),
                        amount=1)
                for i in range(10)
            ]
            results = writer.execute(Request(commands))
            failures.extend(r.code.name for r in results if not r.ok)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    live = writer.machine.state
    assert live.next_seq == 2 + 40 + 8 * 25 * 10
    writer.stop()
    writer.store.close()
    reopened = RocksEventStore(path, LEDGER)
    try:
        replayed, count = replay(reopened)
        assert count == live.next_seq
        assert compare_states(replayed, live) == []
    finally:
        reopened.close()


class FailingOnce(RocksEventStore):
    """A real store whose next write fails once, as a full disk would."""

    fail_next = False

    def write(self, outcome, state):
        if self.fail_next:
            self.fail_next = False
            raise OSError("No space left on device")
        super().write(outcome, state)


def test_a_failed_write_acknowledges_nothing_and_the_writer_carries_on(path):
    store = FailingOnce(path, LEDGER)
    writer = Writer(store).start()
    try:
        open_and_fund(writer, ["a", "b"], amount=100)
        seq_before = writer.last_seq
        store.fail_next = True
        future = writer.submit(Request([Command("transfer", "t1", account=acc("a"),
                                                to=acc("b"), amount=60)]))
        with pytest.raises(WriteFailed):
            future.result(10)
        # The in-memory state was rolled back to what is on disk: same balances, same seq.
        assert writer.machine.state.accounts[acc("a")].balances["available"] == 100
        assert writer.machine.state.next_seq == seq_before + 1
        # The same command (same key) now goes through once, with the next seq.
        [result] = writer.execute(Request([Command("transfer", "t1", account=acc("a"),
                                                   to=acc("b"), amount=60)]))
        assert result.ok and not result.replayed
        assert result.seq == seq_before + 1
    finally:
        writer.stop()
        store.close()


class RefusingAtKey(RocksEventStore):
    """A real store that cannot write any part holding the command keyed `refused`."""

    refused = "poison"

    def write(self, outcome, state):
        if any(e.body["idempotency_key"] == self.refused for e in outcome.events):
            raise OSError("simulated failure tied to one command")
        super().write(outcome, state)


def test_a_request_that_breaks_its_group_fails_alone(path):
    store = RefusingAtKey(path, LEDGER)
    writer = Writer(store)
    writer.recover()  # synchronous: both requests below go into one group
    try:
        funding = PendingRequest(Request([
            Command("open_account", "open-a", did="did:a"),
            Command("open_account", "open-b", did="did:b"),
            Command("mint", "mint-a", account=acc("a"), amount=100),
        ]))
        writer.commit_group([funding])
        good = PendingRequest(Request([Command("transfer", "good", account=acc("a"), to=acc("b"),
                                         amount=10)]))
        poison = PendingRequest(Request([Command("transfer", "poison", account=acc("a"),
                                           to=acc("b"), amount=20)]))

        writer.commit_group([good, poison])

        [result] = good.future.result(0)
        assert result.ok
        with pytest.raises(WriteFailed):
            poison.future.result(0)
        assert writer.machine.state.accounts[acc("b")].balances["available"] == 10
        assert store.head()[0] == writer.machine.state.next_seq - 1
    finally:
        store.close()


def test_restart_recovers_the_committed_state(path):
    store = RocksEventStore(path, LEDGER)
    writer = Writer(store).start()
    open_and_fund(writer, ["a", "b"], amount=100)
    writer.execute(Request([Command("transfer", "t1", account=acc("a"), to=acc("b"),
                                    amount=30)]))
    live = writer.machine.state
    writer.stop()
    store.close()

    store = RocksEventStore(path, LEDGER)
    restarted = Writer(store).start()
    try:
        assert compare_states(restarted.machine.state, live) == []
        [again] = restarted.execute(Request([Command("transfer", "t1", account=acc("a"),
                                                     to=acc("b"), amount=30)]))
        assert again.replayed and again.ok
        assert restarted.machine.state.accounts[acc("b")].balances["available"] == 130
    finally:
        restarted.stop()
        store.close()


def test_start_refuses_a_log_whose_tail_was_tampered_with(path):
    store = RocksEventStore(path, LEDGER)
    writer = Writer(store).start()
    open_and_fund(writer, ["a"], amount=100)
    last_seq = writer.last_seq
    writer.stop()
    store.close()

    raw = rocksdict.Rdict(str(path))  # an existing database opens raw, with every family
    log = raw.get_column_family("log")
    key = last_seq.to_bytes(8, "big")
    value = bytearray(log[key])
    value[-5] ^= 0x01  # one bit of the last event's body
    log[key] = bytes(value)
    log.close()
    raw.close()

    store = RocksEventStore(path, LEDGER)
    try:
        with pytest.raises(ChainBroken) as broken:
            Writer(store).start()
        assert broken.value.seq == last_seq
    finally:
        store.close()


def test_an_idle_writer_expires_holds_by_its_own_clock(path):
    now = [1_000 * SECOND]
    store = RocksEventStore(path, LEDGER)
    writer = Writer(store, clock=lambda: now[0]).start()
    try:
        open_and_fund(writer, ["a", "b"], amount=100)
        [held] = writer.execute(Request([Command(
            "hold", "h1", account=acc("a"), beneficiary=acc("b"), amount=40,
            expires_at=now[0] + 5 * SECOND)]))
        assert held.ok
        now[0] += 6 * SECOND
        deadline = time.monotonic() + 5
        while writer.machine.state.accounts[acc("a")].balances["held"] and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        balances = writer.machine.state.accounts[acc("a")].balances
        assert (balances["available"], balances["held"]) == (100, 0)
        [late] = writer.execute(Request([Command("release", "r1",
                                                 hold_id=held.event.body["refs"]["hold_id"])]))
        assert late.code == ResultCode.hold_expired
    finally:
        writer.stop()
        store.close()


def test_a_stopped_writer_refuses_new_requests(writer):
    writer.stop()
    with pytest.raises(WriterStopped):
        writer.submit(Request([Command("open_account", "o", did="did:x")]))


def test_a_writer_tunes_its_interpreter(path, monkeypatch):
    """A writer's process collects every YOUNG_THRESHOLD allocations, not every 700, and
    switches threads every millisecond (ledger/interpreter.py says why). Recorded, not applied,
    so this test changes no other's interpreter."""
    thresholds: list[tuple[int, ...]] = []
    intervals: list[float] = []
    monkeypatch.setattr(interpreter.gc, "set_threshold", lambda *values: thresholds.append(values))
    monkeypatch.setattr(interpreter.sys, "setswitchinterval", intervals.append)
    store = RocksEventStore(path, "EUR")
    try:
        Writer(store).recover()
    finally:
        store.close()
    assert thresholds == [(interpreter.YOUNG_THRESHOLD, interpreter.MIDDLE_THRESHOLD,
                           interpreter.OLD_THRESHOLD)]
    assert intervals == [interpreter.SWITCH_INTERVAL_SECONDS] == [0.001]


def _held(writer: Writer):
    """Hold the writer so that what is submitted next queues up: the first blocker holds the
    syncer in its listener, the others fill the groups the writer may have written and not yet
    made durable, so it takes no more from its queue. (the event that lets it go, the last
    blocker's future)"""
    release = threading.Event()
    writer.durable_listeners.append(lambda events, last_seq: release.wait(10))
    blockers = []
    for i in range(writer.max_unsynced_groups):
        blockers.append(writer.submit(
            Request([Command("mint", f"block-{i}", account=acc("a"), amount=1)])))
        time.sleep(0.2)
    return release, blockers[-1]


def _bulk(prefix: str, count: int) -> Request:
    return Request([Command("transfer", f"{prefix}-{i}", account=acc("a"), to=acc("b"), amount=1)
                    for i in range(count)])


def _lone() -> Request:
    return Request([Command("transfer", "lone", account=acc("b"), to=acc("a"), amount=2)])


def test_small_requests_are_committed_ahead_of_the_bulk_queued_with_them(writer):
    open_and_fund(writer, ["a", "b"])
    release, blocker = _held(writer)
    bulk = writer.submit(_bulk("bulk", 50))
    lone = writer.submit(_lone())
    release.set()
    [blocked] = blocker.result(10)
    [paid] = lone.result(10)
    moved = bulk.result(10)
    assert all(r.ok for r in [blocked, paid, *moved])
    # Taken from the queue together, the lone payment went first, in a group of its own.
    assert blocked.seq < paid.seq < moved[0].seq
    assert [r.seq for r in moved] == list(range(paid.seq + 1, paid.seq + 51))


def test_a_small_request_queued_while_bulk_is_decided_goes_before_the_rest_of_it(writer):
    open_and_fund(writer, ["a", "b"])
    release, _ = _held(writer)
    # The lone payment is queued while the first part of the bulk request is decided.
    lone: list = []
    decide = writer.machine.execute

    def execute(requests, now, known, outcome=None):
        if len(requests[0].commands) == PART_COMMANDS and not lone:
            lone.append(writer.submit(_lone()))
        return decide(requests, now, known, outcome)

    writer.machine.execute = execute
    bulk = writer.submit(_bulk("bulk", 2 * PART_COMMANDS + 10))
    release.set()
    moved = bulk.result(10)
    [paid] = lone[0].result(10)
    # One answer for the whole request, its results in its commands' order.
    assert len(moved) == 2 * PART_COMMANDS + 10
    assert all(r.ok for r in [paid, *moved])
    assert [r.seq for r in moved] == sorted(r.seq for r in moved)
    # The group ended after the first part; the lone payment went next, then the rest.
    assert moved[PART_COMMANDS - 1].seq < paid.seq < moved[PART_COMMANDS].seq
    assert moved[-1].seq - moved[0].seq == len(moved)


def test_a_request_in_parts_finds_the_records_of_every_part(writer):
    open_and_fund(writer, ["a", "b"], amount=10_000)
    request = _bulk("again", 3 * PART_COMMANDS)
    first = writer.execute(request)
    seq = writer.last_seq
    second = writer.execute(request)
    # Every command of every part was recorded and is replayed: nothing is applied twice.
    assert all(r.ok and not r.replayed for r in first)
    assert all(r.ok and r.replayed for r in second)
    assert [r.seq for r in second] == [r.seq for r in first]
    assert writer.last_seq == seq
    assert writer.machine.state.accounts[acc("b")].balances["available"] == 10_000 + len(first)


def test_a_request_whose_later_part_fails_says_part_of_it_was_applied(path):
    store = RefusingAtKey(path, LEDGER)
    writer = Writer(store).start()
    try:
        open_and_fund(writer, ["a", "b"], amount=10_000)
        written, rest = WRITE_COMMANDS, PART_COMMANDS
        request = _bulk("half", written + rest)
        store.refused = f"half-{written + 5}"
        with pytest.raises(WriteFailed, match="part of the request was applied"):
            writer.execute(request)
        # What was written is in the store and in the state alike; the rest is in neither.
        assert writer.machine.state.accounts[acc("b")].balances["available"] == 10_000 + written
        assert store.head()[0] == writer.machine.state.next_seq - 1
        # Sent again with the same keys, it finishes: the written part replayed, the rest new.
        store.refused = "none"
        results = writer.execute(request)
        assert [r.replayed for r in results] == [True] * written + [False] * rest
        assert writer.machine.state.accounts[acc("b")].balances["available"] == 10_000 + \
            written + rest
    finally:
        writer.stop()
        store.close()


class SlowSync(RocksEventStore):
    """A real store whose syncs wait until the test lets them finish (or fail)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.syncing = threading.Event()
        self.release = threading.Event()
        self.fail = False
        self.written: list[int] = []  # last seq of each group written

    def write(self, outcome, state):
        super().write(outcome, state)
        self.written.append(state.next_seq - 1)

    def sync(self):
        self.syncing.set()
        assert self.release.wait(10)
        if self.fail:
            self._db = SyncFails(self._db)
        super().sync()


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_next_group_is_decided_while_the_last_one_syncs_and_answered_after_it(path):
    store = SlowSync(path, LEDGER)
    store.release.set()
    writer = Writer(store).start()
    heard: list[int] = []
    writer.durable_listeners.append(lambda events, last_seq: heard.append(last_seq))
    try:
        open_and_fund(writer, ["a", "b"])
        store.release.clear()
        store.syncing.clear()
        first = writer.submit(Request([Command("transfer", "t1", account=acc("a"), to=acc("b"),
                                               amount=1)]))
        assert store.syncing.wait(10)
        written = len(store.written)
        second = writer.submit(Request([Command("transfer", "t2", account=acc("b"),
                                                to=acc("a"), amount=2)]))
        # Written while the first group syncs, and neither is answered before its sync.
        _wait_for(lambda: len(store.written) == written + 1)
        assert not first.done() and not second.done()
        assert writer.last_seq < store.written[-2]

        store.release.set()
        [one], [two] = first.result(10), second.result(10)
        assert one.ok and two.ok and one.seq < two.seq
        assert heard[-2:] == [one.seq, two.seq] and writer.last_seq == two.seq
    finally:
        store.release.set()
        writer.stop()
        store.close()


def test_a_failed_sync_fails_every_group_written_since_and_the_writer_stops(path):
    store = SlowSync(path, LEDGER)
    store.release.set()
    writer = Writer(store).start()
    try:
        open_and_fund(writer, ["a", "b"])
        acknowledged = writer.last_seq
        store.release.clear()
        store.syncing.clear()
        first = writer.submit(Request([Command("transfer", "t1", account=acc("a"), to=acc("b"),
                                               amount=1)]))
        assert store.syncing.wait(10)
        second = writer.submit(Request([Command("transfer", "t2", account=acc("b"),
                                                to=acc("a"), amount=2)]))
        _wait_for(lambda: store.written[-1] > acknowledged + 1)
        store.fail = True
        store.release.set()

        for future in (first, second):
            with pytest.raises(WriteFailed, match="could not be made durable"):
                future.result(10)
        assert writer.last_seq == acknowledged
        _wait_for(lambda: not writer.running)
        with pytest.raises(WriterStopped):
            writer.submit(Request([Command("transfer", "t3", account=acc("a"), to=acc("b"),
                                           amount=1)]))
    finally:
        store.release.set()
        writer.stop()
        store.close()
