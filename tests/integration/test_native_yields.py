"""The native loops over a whole group let other threads of the writer's process run
(ledger/_gil.h): without it, deciding and batching a large group held the interpreter lock from
start to end, and the threads that read the bus and send replies waited that long.

A ticker thread sleeps a little in a loop while a large group is decided (`execute_plain`) and
put into a WriteBatch (`fill`); the longest gap between its ticks must stay far below the time
the call took (without the yields it is the whole call)."""

from __future__ import annotations

import gc
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from rocksdict import WriteBatch

from ledger.core.commands import Command, Request
from ledger.core.machine import StateMachine
from ledger.core.state import LedgerState, account_id_for
from ledger.eventstore import rocks
from ledger.eventstore.rocks import RocksEventStore

LEDGER = "EUR"
ACCOUNTS = 100
TRANSFERS = 40_000


@contextmanager
def ticker():
    """Yields the ticks' timestamps; ends with the longest gap between two of them."""
    ticks: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0002)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # the writer's (ledger.interpreter)
    thread = threading.Thread(target=tick)
    thread.start()
    # As in the writer's group commit: a collection of the young objects would hold the lock
    # too, but that is not what is measured here.
    gc.disable()
    try:
        time.sleep(0.01)
        yield ticks
    finally:
        gc.enable()
        done.set()
        thread.join()
        sys.setswitchinterval(previous)


# A native call that never let the lock go would leave one gap as long as the whole call; the
# bound is half of it, not less, because a host that takes this machine's CPU away (seen: a
# fifth of its time) opens gaps of tens of milliseconds in any thread.
GAP_SHARE = 2


def longest_gap(ticks: list[float], start: float, end: float) -> float:
    inside = [t for t in ticks if start <= t <= end]
    points = [start, *inside, end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


@pytest.fixture(scope="module")
def group():
    """A machine with funded accounts and the outcome of one large group of transfers."""
    machine = StateMachine(LedgerState(LEDGER))
    machine.genesis(1)
    ids = [account_id_for(LEDGER, f"did:{i}") for i in range(ACCOUNTS)]
    setup = [Command("open_account", f"o{i}", did=f"did:{i}") for i in range(ACCOUNTS)]
    setup += [Command("mint", f"m{i}", account=a, amount=10**9) for i, a in enumerate(ids)]
    machine.execute([Request(setup)], 2, {})
    transfers = [Command("transfer", f"t{i}", account=ids[i % ACCOUNTS],
                         to=ids[(i + 1) % ACCOUNTS], amount=1) for i in range(TRANSFERS)]
    return machine, Request(transfers)


def test_deciding_a_large_group_lets_other_threads_run(group):
    machine, request = group
    with ticker() as ticks:
        start = time.perf_counter()
        outcome = machine.execute([request], 3, {})
        end = time.perf_counter()
    assert all(r.ok for r in outcome.results[0])
    assert longest_gap(ticks, start, end) < (end - start) / GAP_SHARE, (end - start)


def test_batching_a_large_group_lets_other_threads_run(group, tmp_path):
    machine, request = group
    outcome = machine.execute([Request([
        Command("transfer", f"b{i}", account=c.account, to=c.to, amount=1)
        for i, c in enumerate(request.commands)])], 4, {})
    store = RocksEventStore(tmp_path / LEDGER, LEDGER)
    try:
        log, by_account, _, idem, *_ = store._handles
        batch = WriteBatch(raw_mode=True)
        with ticker() as ticks:
            start = time.perf_counter()
            rocks.fill(batch.put, outcome.events, outcome.records, log, by_account, idem)
            end = time.perf_counter()
        assert batch.len() == 4 * TRANSFERS  # a log entry, two as-of entries, a record each
        assert longest_gap(ticks, start, end) < (end - start) / GAP_SHARE, (end - start)
    finally:
        store.close()
