"""The single writer of one ledger shard: group commit over the pure state machine.

Exactly one `Writer` owns a shard's store. Clients hand it requests (from any thread); its own
thread takes every request waiting in the queue (up to `max_group_commands` commands), decides
them in one `StateMachine.execute` and writes the outcome in one `EventStore.write`. A second
thread, the syncer, makes written groups durable (`EventStore.sync`, one for every group
written meanwhile) and only then resolves the clients' futures. So nothing is acknowledged
before it is durable, the cost of the fsync is shared by the whole group, and the writer
decides the next group while the disk syncs the last (`MAX_UNSYNCED_GROUPS` at most are
written and not yet durable). Requests taken together are decided in arrival order, except
that small ones go first (`SMALL_REQUEST_COMMANDS`), and a group of larger ones ends after the
request in progress when a small one is queued meanwhile; requests in flight at the same time
have no order a client could rely on anyway.

If a write fails, the in-memory state is ahead of the store: the writer fails the group's
requests and reloads its state from the store (which holds every group written before), so
what clients were told and what is stored never diverge. If a sync fails, the store refuses
every later call; the syncer fails every group not yet durable and the writer stops.

Two kinds of listener follow a durable group, in the syncer's thread and in commit order:
`durable_listeners`, each called `(events, last_seq)` before any of the group's requests is
answered (for what readers must see by the time a client has its answer: the Redis bus server
publishes balances there; and for the projector, which takes the events from memory), then
`on_commit(last_seq)`. They must be quick: the next durable group waits for them.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from ledger.core.commands import Request
from ledger.core.machine import Event, GroupOutcome, Result, StateMachine
from ledger.eventstore.port import EventStore
from ledger.interpreter import tune_for_writer
from ledger.replay import verify_tail

log = logging.getLogger(__name__)

MAX_GROUP_COMMANDS = 16_384
"""Commands decided in one group commit at most (a request is never split)."""

SMALL_REQUEST_COMMANDS = 10
"""Requests of at most this many commands are committed ahead of the larger ones taken from the
queue with them, in a group of their own: a lone payment then waits for the group being
written, not also for the bulk requests queued beside it. Measured with `python -m bench
http-distributed` (4 clients posting batches of 1,000): single-transfer p50 / p95 under load
133-149 / 188-239 ms before, 80-110 / 154-181 ms after, throughput unchanged.

And when one is queued while a group of larger requests is being decided, that group ends
after the request in progress (`_small_waiting`): the others wait until the small one is
decided. Three alternating pairs: single-transfer p95 50.7 / 51.0 / 47.1 ms against 61.1 / 55.0
/ 57.9, 53,162 / 49,571 / 55,298 transfers/s against 45,976 / 53,568 / 54,189."""

IDLE_TICK_SECONDS = 0.5
"""How often an idle writer wakes up to expire due holds by its clock."""

TAIL_VERIFY_EVENTS = 10_000
"""How many of the last events the writer re-hashes at start-up."""

MAX_UNSYNCED_GROUPS = 2
"""Groups written and not yet durable at most: one syncing, one being decided. The writer
takes its next group from the queue only when one of them is durable, so requests queued
meanwhile form one larger group instead of several small ones each waiting for a sync.
Measured with `python -m bench http-distributed`: see docs/benchmarks.md, the fourteenth
session."""


class WriterError(Exception):
    """Root of the writer's exceptions."""


class WriterStopped(WriterError):
    """The writer is not running (stopped, or never started)."""


class WriteFailed(WriterError):
    """The group could not be made durable; none of its commands took effect."""


class PendingRequest:
    """A request waiting in the writer's queue, with the future its client waits on."""

    __slots__ = ("request", "future")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.future: Future[list[Result]] = Future()


class _Written:
    """A group written to the store, waiting for a sync to make it durable."""

    __slots__ = ("group", "outcome", "last_seq")

    def __init__(self, group: list[PendingRequest], outcome: GroupOutcome, last_seq: int):
        self.group = group
        self.outcome = outcome
        self.last_seq = last_seq


_STOP = object()


class Writer:
    def __init__(
        self,
        store: EventStore,
        *,
        clock: Callable[[], int] = time.time_ns,
        max_group_commands: int = MAX_GROUP_COMMANDS,
        max_unsynced_groups: int = MAX_UNSYNCED_GROUPS,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.ledger = store.ledger
        self.clock = clock
        self.max_group_commands = max_group_commands
        self.on_commit = on_commit
        self.durable_listeners: list[Callable[[list[Event], int], None]] = []
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._syncer: threading.Thread | None = None
        # What the writer hands the syncer, in seq order: a list of written groups per hand-off
        # (one slot of `_unsynced_slots` each); None tells it to finish.
        self._written: queue.SimpleQueue = queue.SimpleQueue()
        self.max_unsynced_groups = max_unsynced_groups
        self._unsynced_slots = threading.Semaphore(max_unsynced_groups)
        # Set when a small request is queued; a bulk group being decided then ends early.
        self._small_waiting = threading.Event()
        self.machine: StateMachine | None = None
        # The last durable seq, for other threads: the state's own next_seq runs ahead of the
        # disk while a group is being decided, so it must not be read from outside.
        self.last_seq = -1

    # -- lifecycle -----------------------------------------------------------------------------

    def recover(self) -> None:
        """Load the committed state, verify the tail of the hash chain, write genesis if the
        log is empty. Called by `start`; callable alone for synchronous use (benchmarks)."""
        state = self.store.load()
        verify_tail(self.store, TAIL_VERIFY_EVENTS)
        self.machine = StateMachine(state)
        if state.next_seq == 0:
            outcome = self.machine.genesis(self.clock())
            self.store.append(outcome, state)
        self.last_seq = state.next_seq - 1
        # The loaded state lives as long as the writer: keep it out of the cyclic collector's
        # generations so collections stay short however many accounts there are; and collect
        # less often (see ledger.interpreter).
        gc.freeze()
        tune_for_writer()

    def start(self) -> Writer:
        if self._thread is not None:
            raise WriterError("writer already started")
        self.recover()
        self._syncer = threading.Thread(
            target=self._sync_run, name=f"ledger-syncer-{self.ledger}", daemon=True
        )
        self._syncer.start()
        self._thread = threading.Thread(
            target=self._run, name=f"ledger-writer-{self.ledger}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop the threads."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._syncer.join(timeout)
        self._thread = self._syncer = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- client side ---------------------------------------------------------------------------

    def submit(self, request: Request) -> Future[list[Result]]:
        """Queue a request; the future resolves once its outcome is durable."""
        if not self.running:
            raise WriterStopped(f"the writer of ledger {self.ledger} is not running")
        pending = PendingRequest(request)
        self._queue.put(pending)
        if len(request.commands) <= SMALL_REQUEST_COMMANDS:
            self._small_waiting.set()
        return pending.future

    def execute(self, request: Request, timeout: float | None = 30.0) -> list[Result]:
        return self.submit(request).result(timeout)

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._take_groups()
        finally:
            self._written.put(None)  # the syncer finishes what was written, then stops

    def _take_groups(self) -> None:
        get = self._queue.get
        get_nowait = self._queue.get_nowait
        carried: list[PendingRequest] = []  # taken, but left undecided by a group cut short
        while True:
            if carried:
                group = carried
            else:
                try:
                    item = get(timeout=IDLE_TICK_SECONDS)
                except queue.Empty:
                    self._write_group([])  # expires due holds, if any
                    continue
                if item is _STOP:
                    return
                group = [item]
            # Cleared before the queue is read: a small request queued from now on is seen.
            self._small_waiting.clear()
            size = sum(len(p.request.commands) for p in group)
            stop = False
            while size < self.max_group_commands:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                group.append(item)
                size += len(item.request.commands)
            small = [p for p in group if len(p.request.commands) <= SMALL_REQUEST_COMMANDS]
            bulk = len(small) < len(group)
            if small and bulk:
                self._write_group(small)
                group = [p for p in group if len(p.request.commands) > SMALL_REQUEST_COMMANDS]
            carried = self._write_group(group, cut_short=bulk)
            if stop:
                while carried:
                    carried = self._write_group(carried)
                return

    def _write_group(self, group: list[PendingRequest], *,
                     cut_short: bool = False) -> list[PendingRequest]:
        """Decide and write one group, and hand it to the syncer; first wait until fewer than
        `max_unsynced_groups` are written and not yet durable. With `cut_short`, the group
        ends early when a small request is waiting: the requests left undecided."""
        self._unsynced_slots.acquire()
        written, decided = self._decide(
            group, self._small_waiting.is_set if cut_short else None)
        if written:
            self._written.put(written)  # the syncer frees the slot
        else:
            self._unsynced_slots.release()
        return group[decided:]

    def commit_group(self, group: list[PendingRequest]) -> None:
        """Decide, write and sync one group, then resolve its futures, all in the calling
        thread (for a writer that was recovered but not started: tests, benchmarks)."""
        self._make_durable(self._decide(group)[0])

    def _decide(
        self, group: list[PendingRequest], stop: Callable[[], bool] | None = None
    ) -> tuple[list[_Written], int]:
        """Decide one group and write it: (what was written, to be made durable in this order
        (more than one group when a failed group was retried request by request, none when
        nothing was written and no one waits for an answer), how many of the group's requests
        were decided). Futures of requests that failed hold their error already. `stop` may
        end the group early (`StateMachine.execute`)."""
        machine = self.machine
        state = machine.state
        requests = [pending.request for pending in group]
        # A group allocates a few hundred thousand short-lived, acyclic objects; reference
        # counting frees them. Cyclic collections triggered meanwhile would only rescan them
        # (measured: a third of the group's time), so the collector pauses for the group.
        gc.disable()
        try:
            scopes = machine.idempotency_scopes(requests)
            known = self.store.idempotency_records(scopes) if scopes else {}
            outcome = machine.execute(requests, self.clock(), known, stop)
            if outcome.events or outcome.records:
                self.store.write(outcome, state)
            group = group[:len(outcome.results)]
        except Exception as exc:
            gc.enable()
            log.exception("group commit failed on ledger %s; reloading state", self.ledger)
            # Reload before answering, so a client that retries at once meets the state that
            # is in the store, not the one that failed to get there.
            self._reload()
            if len(group) != 1:
                # One bad request must not fail the others: retry each on its own, so only
                # the one that fails again is refused (an I/O failure refuses them all).
                return [written for pending in group
                        for written in self._decide([pending])[0]], len(group)
            error = WriteFailed(f"ledger {self.ledger}: the write failed and nothing was applied")
            error.__cause__ = exc
            group[0].future.set_exception(error)
            return [], 1
        gc.enable()
        if not (group or outcome.events):
            return [], 0
        return [_Written(group, outcome, state.next_seq - 1)], len(group)

    # -- the syncer thread ---------------------------------------------------------------------

    def _sync_run(self) -> None:
        get = self._written.get
        get_nowait = self._written.get_nowait
        finish = False
        while not finish:
            handed = [get()]
            while True:  # every group written meanwhile: one sync makes them all durable
                try:
                    handed.append(get_nowait())
                except queue.Empty:
                    break
            if handed[-1] is None:
                finish = True
                handed.pop()
            if handed:
                self._make_durable([written for groups in handed for written in groups])
                for _ in handed:
                    self._unsynced_slots.release()

    def _make_durable(self, batch: list[_Written]) -> None:
        """Sync the store, then publish and answer each group of `batch`, in order."""
        if not batch:
            return
        try:
            # Even for groups that wrote nothing (all rejected): their answers were decided on
            # the groups written before them, which must be durable first.
            self.store.sync()
        except Exception as exc:
            log.exception("sync failed on ledger %s; writer stops", self.ledger)
            error = WriteFailed(
                f"ledger {self.ledger}: the write could not be made durable; the writer stopped")
            error.__cause__ = exc
            for written in batch:
                for pending in written.group:
                    pending.future.set_exception(error)
            self._queue.put(_STOP)  # the store refuses every call now
            return
        for written in batch:
            self._answer(written)

    def _answer(self, written: _Written) -> None:
        outcome = written.outcome
        self.last_seq = written.last_seq
        if outcome.events:
            for listener in self.durable_listeners:
                try:
                    listener(outcome.events, written.last_seq)
                except Exception:
                    log.exception("durable-group listener failed on ledger %s", self.ledger)
        for pending, results in zip(written.group, outcome.results, strict=True):
            pending.future.set_result(results)
        if outcome.events and self.on_commit is not None:
            try:
                self.on_commit(written.last_seq)
            except Exception:
                # Listeners catch up from the log on their next notification; the writer
                # must not stop because one of them failed.
                log.exception("commit listener failed on ledger %s", self.ledger)

    def _reload(self) -> None:
        try:
            self.machine = StateMachine(self.store.load())
        except Exception:
            # The store itself is unusable: stop taking requests rather than guess.
            log.exception("ledger %s: cannot reload state; writer stops", self.ledger)
            self._queue.put(_STOP)
