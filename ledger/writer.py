"""The single writer of one ledger shard: group commit over the pure state machine.

Exactly one `Writer` owns a shard's store. Clients hand it requests (from any thread); its own
thread takes every request waiting in the queue (up to `max_group_commands` commands), decides
them with the `StateMachine` and writes what they produced to the `EventStore`. A second
thread, the syncer, makes written groups durable (`EventStore.sync`, one for every group
written meanwhile) and only then resolves the clients' futures. So nothing is acknowledged
before it is durable, the cost of the fsync is shared by the whole group, and the writer
decides the next group while the disk syncs the last (`MAX_UNSYNCED_GROUPS` at most are
written and not yet durable). Requests taken together are decided in arrival order, except
that small ones go first (`SMALL_REQUEST_COMMANDS`). Within a group, large requests are decided
part by part (`PART_COMMANDS`) and written every `WRITE_COMMANDS` commands, and a group of
larger requests ends after the part in progress when a small one is queued meanwhile: the rest
is decided after the small one. Requests in flight at the same time have no order a client
could rely on anyway, and the commands of a request that is not atomic stand each on its own.

If a write fails, the in-memory state is ahead of the store: the writer reloads its state from
the store (which holds every part written before) and fails the request that broke the write,
so what clients were told and what is stored never diverge; the others are decided again. If a
sync fails, the store refuses every later call; the syncer fails every group not yet durable
and the writer stops.

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
after the part in progress (`_small_waiting`, `PART_COMMANDS`): the rest waits until the small
one is decided. Ending it after the request in progress instead, three alternating pairs:
single-transfer p95 50.7 / 51.0 / 47.1 ms against 61.1 / 55.0 / 57.9 with no end at all,
53,162 / 49,571 / 55,298 transfers/s against 45,976 / 53,568 / 54,189."""

PART_COMMANDS = 256
"""Commands of a request that is not atomic decided at a time at most: a small request queued
meanwhile waits for the part in progress, not for the rest of a bulk request."""

WRITE_COMMANDS = 2_048
"""Decided commands written together once there are this many: a group cut short for a small
request writes at most about this many before the small request is decided. Measured inside
the writer process under `python -m bench http-distributed`, the write of the whole group
decided so far kept a lone payment waiting 9.8-12.4 ms (median), 22.5-26.3 (p95).

Not each part on its own: a write of fewer keys costs more per key (RocksDB's memtable gets
them less close together), and 200,000 transfers written 256 at a time took 15% longer than
8,000 at a time. Five alternating pairs with 1,024, two with 2,048 (docs/benchmarks.md, the
seventeenth session): single-transfer p95 under load 48-53 and 55-56 ms against 60-103 ms,
transfers/s within the noise of the old writer's; engine-direct (`python -m bench engine`)
10-20% below it."""

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
    """A request waiting in the writer's queue, with the future its client waits on, and how
    far it is decided: a bulk request may be decided in parts, over more than one group."""

    __slots__ = ("request", "future", "decided", "results")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.future: Future[list[Result]] = Future()
        self.decided = 0  # commands decided so far (taken back if their write fails)
        self.results: list[Result] = []  # theirs

    def undecided(self) -> Request:
        """The request's commands still to decide."""
        if not self.decided:
            return self.request
        return Request(self.request.commands[self.decided:], self.request.atomic)

    def next_part(self) -> Request:
        """The request's commands still to decide, `PART_COMMANDS` of them at most (all of
        an atomic request)."""
        request = self.request
        if request.atomic or (self.decided == 0 and len(request.commands) <= PART_COMMANDS):
            return request
        return Request(request.commands[self.decided:self.decided + PART_COMMANDS])


class _Written:
    """What a group wrote to the store, waiting for a sync to make it durable: its events,
    and the requests it finished with their results (a request decided in parts is answered
    with the group of its last part)."""

    __slots__ = ("events", "answers", "last_seq")

    def __init__(self, events: list[Event], answers: list[tuple[PendingRequest, list[Result]]],
                 last_seq: int) -> None:
        self.events = events
        self.answers = answers
        self.last_seq = last_seq


class _Unwritten:
    """Parts decided and not yet written: their outcome, how many commands they hold, and
    where each request they belong to stood before them (to undo them if the write fails)."""

    __slots__ = ("outcome", "commands", "starts")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.outcome = GroupOutcome()
        self.commands = 0
        self.starts: list[tuple[PendingRequest, int, int]] = []  # (request, decided, index)

    def add(self, pending: PendingRequest, index: int) -> None:
        if not self.starts or self.starts[-1][0] is not pending:
            self.starts.append((pending, pending.decided, index))

    def undo(self, answers: list[tuple[PendingRequest, list[Result]]], index: int) -> int:
        """Take the parts back from their requests (and the finished ones out of `answers`);
        returns the group index of the first request they touched (`index`, the request
        being decided, when there are none)."""
        undone = {id(pending) for pending, _, _ in self.starts}
        answers[:] = [answer for answer in answers if id(answer[0]) not in undone]
        for pending, decided, _ in self.starts:
            pending.decided = decided
            del pending.results[decided:]
        first = self.starts[0][2] if self.starts else index
        self.clear()
        return first


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
                while small:  # more than one pass only after a failed request
                    small = self._write_group(small)
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
        ends early when a small request is waiting: the requests left undecided, the first
        of them perhaps in part."""
        self._unsynced_slots.acquire()
        written, finished = self._decide(
            group, self._small_waiting.is_set if cut_short else None)
        if written is not None:
            self._written.put([written])  # the syncer frees the slot
        else:
            self._unsynced_slots.release()
        return group[finished:]

    def commit_group(self, group: list[PendingRequest]) -> None:
        """Decide, write and sync one group, then resolve its futures, all in the calling
        thread (for a writer that was recovered but not started: tests, benchmarks)."""
        while True:
            written, finished = self._decide(group)
            self._make_durable([] if written is None else [written])
            group = group[finished:]
            if not group:
                return

    def _decide(
        self, group: list[PendingRequest], stop: Callable[[], bool] | None = None
    ) -> tuple[_Written | None, int]:
        """Decide the group's requests in order, part by part, and write them: (what was
        written, to be made durable, or None when nothing was and no one waits for an
        answer; how many of the group's requests were finished, failed ones included).

        `stop()`, asked between parts once one is decided, ends the group early. Parts are
        written together once `WRITE_COMMANDS` are decided, and before the group ends. When
        a part fails, the state is reloaded from the store and the request being decided is
        refused; if the failed write held parts of other requests too, they are all decided
        again instead, each part written on its own, so only the one that fails again is
        refused (an I/O failure refuses them all). The requests after it carry on.
        Futures of requests that failed hold their error already."""
        events: list[Event] = []
        answers: list[tuple[PendingRequest, list[Result]]] = []
        batch = _Unwritten()
        index = 0
        progressed = alone = False
        # A group allocates a few hundred thousand short-lived, acyclic objects; reference
        # counting frees them. Cyclic collections triggered meanwhile would only rescan them
        # (measured: a third of the group's time), so the collector pauses for the group.
        gc.disable()
        try:
            now = self.clock()
            if not group:
                self._expire_holds(now, events)
            known = None
            while index < len(group):
                pending = group[index]
                try:
                    if known is None:
                        known = self._known(group[index:])
                    if progressed and stop is not None and stop():
                        self._flush(batch, events)
                        break
                    part = pending.next_part()
                    batch.add(pending, index)
                    self.machine.execute([part], now, known, outcome=batch.outcome)
                    pending.results += batch.outcome.results[-1]
                    pending.decided += len(part.commands)
                    batch.commands += len(part.commands)
                    progressed = True
                    finished = pending.decided == len(pending.request.commands)
                    if alone or batch.commands >= WRITE_COMMANDS or (
                            finished and index == len(group) - 1):
                        self._flush(batch, events)
                    if finished:
                        answers.append((pending, pending.results))
                        index += 1
                except Exception as exc:
                    log.exception("group commit failed on ledger %s; reloading state",
                                  self.ledger)
                    # Reload before answering, so a client that retries at once meets the
                    # state that is in the store, not the one that failed to get there.
                    self._reload()
                    others = any(started is not pending for started, _, _ in batch.starts)
                    first = batch.undo(answers, index)
                    if alone or not others:
                        self._refuse(pending, exc)
                        index += 1
                    else:
                        alone, index = True, first
                    known = None
        finally:
            gc.enable()
        return self._handover(events, answers), index

    def _known(self, group: list[PendingRequest]) -> dict:
        """The store's idempotency records of every command of `group` still to decide,
        whichever part it falls in."""
        scopes = self.machine.idempotency_scopes([pending.undecided() for pending in group])
        return self.store.idempotency_records(scopes) if scopes else {}

    def _expire_holds(self, now: int, events: list[Event]) -> None:
        batch = _Unwritten()
        self.machine.execute([], now, {}, outcome=batch.outcome)
        try:
            self._flush(batch, events)
        except Exception:
            log.exception("writing expired holds failed on ledger %s; reloading", self.ledger)
            self._reload()

    def _flush(self, batch: _Unwritten, events: list[Event]) -> None:
        """Write what `batch` holds, add its events to `events`, and empty it."""
        outcome = batch.outcome
        if outcome.events or outcome.records:
            self.store.write(outcome, self.machine.state)
            events += outcome.events
        batch.clear()

    def _refuse(self, pending: PendingRequest, cause: Exception) -> None:
        applied = "part of the request was applied; send it again with the same " \
            "idempotency keys to finish it" if pending.decided else \
            "nothing of the request was applied"
        error = WriteFailed(f"ledger {self.ledger}: the write failed and {applied}")
        error.__cause__ = cause
        pending.future.set_exception(error)

    def _handover(self, events: list[Event],
                  answers: list[tuple[PendingRequest, list[Result]]]) -> _Written | None:
        if not (events or answers):
            return None
        return _Written(events, answers, self.machine.state.next_seq - 1)

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
                for pending, _ in written.answers:
                    pending.future.set_exception(error)
            self._queue.put(_STOP)  # the store refuses every call now
            return
        for written in batch:
            self._answer(written)

    def _answer(self, written: _Written) -> None:
        events = written.events
        self.last_seq = written.last_seq
        if events:
            for listener in self.durable_listeners:
                try:
                    listener(events, written.last_seq)
                except Exception:
                    log.exception("durable-group listener failed on ledger %s", self.ledger)
        for pending, results in written.answers:
            pending.future.set_result(results)
        if events and self.on_commit is not None:
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
