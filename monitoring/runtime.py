"""Where the relay and the monitor of each ledger run.

- Embedded mode (`LEDGERFS_MONITOR = "thread"`): `ledger.runtime` calls `attach` once its
  writers run. Committed events are published on an `InProcessEventStream` (a
  `StreamPublisher` per shard, woken by each commit), and a relay thread and a monitor thread
  per ledger consume it in this process.
- Distributed mode: the writer processes publish on the Redis event stream, and
  `manage.py monitor` runs the same `Supervisor` over it, reading the shards as secondary
  instances. Run exactly one per deployment (a second one only wastes work: the monitors'
  cursors are checked in every transaction).

The supervisor starts the workers of every ledger it finds, and of new ledgers within a second.
A worker that fails is rebuilt from the stored state after a pause; nothing is lost, because
the monitor's cursor moves only with its effects and the relay's consumers fill gaps from the
log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections

from ledger.shards import UnknownLedger
from ledger.stream import EventStream, InProcessEventStream, StreamPublisher

log = logging.getLogger(__name__)

DISCOVER_SECONDS = 1.0
POLL_SECONDS = 0.5
RESTART_PAUSE_SECONDS = 1.0


class Worker:
    """A thread running `step` of an object made by `build`, rebuilt after a failure."""

    def __init__(self, name: str, build: Callable[[], object]) -> None:
        self.name = name
        self.build = build
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Worker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        target = None
        while not self._stop.is_set():
            try:
                close_old_connections()
                if target is None:
                    target = self.build()
                target.step(POLL_SECONDS)
            except Exception:
                log.exception("%s failed; restarting it from its stored state", self.name)
                target = None
                self._stop.wait(RESTART_PAUSE_SECONDS)
        connections.close_all()  # this thread's connections


class Supervisor:
    """The relay and monitor of every ledger of `shards`, over `stream`. With `publish`, it
    also publishes each shard's commits on the stream (the writers run in this process)."""

    def __init__(self, stream: EventStream, shards, *, publish: bool = False) -> None:
        self.stream = stream
        self.shards = shards
        self.publish = publish
        self._publishers: dict[str, StreamPublisher] = {}
        self._workers: dict[str, list[Worker]] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self.run, name="monitoring", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Discover ledgers and start their workers until `stop` (blocks)."""
        while not self._stop.is_set():
            try:
                for code in self.shards.codes():
                    if code not in self._workers:
                        self._start_ledger(code)
            except Exception:
                log.exception("discovering ledgers failed")
            self._wake.wait(DISCOVER_SECONDS)
            self._wake.clear()

    def notify(self, ledger: str, last_seq: int) -> None:
        """A commit listener: wakes the ledger's publisher (or discovery, for a new one)."""
        publisher = self._publishers.get(ledger)
        if publisher is not None:
            publisher.notify(last_seq)
        else:
            self._wake.set()

    def _start_ledger(self, code: str) -> None:
        try:
            store = self.shards.get(code).store
        except UnknownLedger:
            return
        if self.publish:
            self._publishers[code] = StreamPublisher(self.stream, store).start()
        from monitoring.monitor import LedgerMonitor
        from monitoring.relay import EventRelay

        self._workers[code] = [
            Worker(f"relay-{code}", lambda: EventRelay(self.stream, store, code)).start(),
            Worker(f"monitor-{code}", lambda: LedgerMonitor(self.stream, store, code)).start(),
        ]
        log.info("ledger %s: relay and monitor started", code)

    def request_stop(self) -> None:
        """Make `run` return (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop discovery and every worker and publisher, waiting for them."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
        workers = [worker for group in self._workers.values() for worker in group]
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(timeout)
        for publisher in self._publishers.values():
            publisher.stop(timeout)
        self._workers.clear()
        self._publishers.clear()


_supervisor: Supervisor | None = None


def attach(runtime) -> None:
    """Called by `ledger.runtime` once this process's writers run (embedded mode)."""
    global _supervisor
    if settings.LEDGERFS_MONITOR != "thread":
        return
    _supervisor = Supervisor(InProcessEventStream(), runtime.shards, publish=True)
    runtime.commit_listeners.append(_supervisor.notify)
    _supervisor.start()


def detach() -> None:
    """Called by `ledger.runtime` before it closes the shards."""
    global _supervisor
    if _supervisor is not None:
        _supervisor.stop()
        _supervisor.stream.close()
        _supervisor = None
