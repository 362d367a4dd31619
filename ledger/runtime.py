"""This process's ledger runtime: the shard registry, the command bus and the projector.

Created lazily on first use, never at import, so management commands that do not touch the
ledger (migrate, makemigrations, ...) never open a RocksDB shard. The one start-up use is a
distributed web process opening its followers before it serves (`open_followers`).

- Embedded (`LEDGERFS_BUS = "inprocess"`): this process runs every shard's writer in a thread
  (`ShardRegistry`) behind an `InProcessBus`. `LEDGERFS_PROJECTOR = "thread"` keeps the read
  models in step from a background thread woken by each commit; `"manual"` (tests) leaves
  projection to explicit `catch_up` calls.
- Distributed (`LEDGERFS_BUS = "redis"`): writers run in their own processes
  (`manage.py ledger_writer`), which also project and publish the event stream. This process
  sends commands over the `RedisBus` and reads the shards as RocksDB secondary instances
  (`FollowerRegistry`); it never opens a shard read-write.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from ledger.bus import CommandBus, InProcessBus
from ledger.group_feed import GroupFeed
from ledger.shards import FollowerRegistry, ShardRegistry

log = logging.getLogger(__name__)

_lock = threading.Lock()
_runtime: Runtime | None = None


def shards_root() -> Path:
    """Where the shards live: `<LEDGERFS_DATA_DIR>/shards/<CODE>/` (shared by all processes
    of one machine in distributed mode)."""
    return Path(settings.LEDGERFS_DATA_DIR) / "shards"


class Runtime:
    def __init__(self) -> None:
        self.distributed = settings.LEDGERFS_BUS == "redis"
        self.projector: BackgroundProjector | None = None
        self.shards: ShardRegistry | FollowerRegistry
        if self.distributed:
            from ledger.transport.redis_bus import (
                RedisBus,
                balances_reader,
                head_reader,
                writer_alive_reader,
            )

            self.shards = FollowerRegistry(
                shards_root(), Path(settings.LEDGERFS_DATA_DIR) / "secondary",
                head_reader(settings.REDIS_URL),
                writer_alive=writer_alive_reader(settings.REDIS_URL),
                current_source=balances_reader(settings.REDIS_URL),
            )
            self.bus: CommandBus = RedisBus(
                settings.REDIS_URL, timeout_seconds=settings.LEDGERFS_BUS_TIMEOUT_SECONDS
            )
        else:
            if settings.LEDGERFS_PROJECTOR == "thread":
                self.projector = BackgroundProjector()
            # Told (ledger, last seq) after each durable group of this process's writers.
            self.commit_listeners: list[Callable[[str, int], None]] = []
            if self.projector is not None:
                self.commit_listeners.append(self.projector.notify)
            self.shards = ShardRegistry(
                shards_root(), on_commit=self._committed,
                on_durable=self.projector.feed.add if self.projector is not None else None,
            )
            self.bus = InProcessBus(self.shards)

    def _committed(self, ledger: str, last_seq: int) -> None:
        for listener in self.commit_listeners:
            listener(ledger, last_seq)

    def close(self) -> None:
        if not self.distributed:
            from attestation.runtime import detach
            from monitoring.runtime import detach as monitoring_detach

            monitoring_detach()  # stops the event stream's consumers before the stores close
            detach()  # stops sealing (and the in-process beat) before the stores close
        if self.projector is not None:
            self.projector.stop()
        self.bus.close()
        self.shards.close()


def runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime()
            if _runtime.projector is not None:
                _runtime.projector.start(_runtime.shards)
            if not _runtime.distributed:
                from attestation.runtime import attach
                from monitoring.runtime import attach as monitoring_attach

                # Seals from these stores; embedded beat (LEDGERFS_BEAT). In distributed
                # mode attestation opens its own secondary instances (Celery worker).
                attach(_runtime.shards)
                # Committed events to WebSockets, AML, webhooks (LEDGERFS_MONITOR); in
                # distributed mode `manage.py monitor` does this from the Redis stream.
                monitoring_attach(_runtime)
        return _runtime


def open_followers() -> None:
    """In distributed mode, open the shards that exist now (`FollowerRegistry.open_existing`);
    nothing in embedded mode, whose writers start with the first request as before. Called by
    the ASGI application as it loads, before its server accepts connections."""
    if settings.LEDGERFS_BUS == "redis":
        runtime().shards.open_existing()


def shutdown() -> None:
    """Stop writers and close shards (at exit, and between tests)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None


atexit.register(shutdown)


class BackgroundProjector:
    """Projects ledgers whose writers reported a commit, off the request and write paths.

    A ledger whose projection failed (the database is down) is retried every
    `RETRY_SECONDS` until it succeeds, commits or not: the cursor did not move, so the retry
    starts from the same place and the read models catch up once the database is back.

    Rounds start at most every `INTERVAL_SECONDS`, and no sooner after a round began than its
    duration divided by `BUSY_SHARE`, up to `MAX_INTERVAL_SECONDS`: a round writes each touched
    account once, so under load a pause lets one round cover many group commits (an account
    busy in all of them is written once instead of once per group), which keeps projection from
    taking the writer's CPU. The longer the rounds, the longer the pause, while a quiet ledger
    is projected within the interval. The ceiling bounds how far the read models fall behind: a
    longer pause makes a longer round (its events are more), which without it lengthened the
    next pause in turn, until the backlog outgrew the writer's memory (`GroupFeed`) and
    was read back from the store. A round stops at the last seq notified before it began: chasing
    the groups committed while it ran cost a second UPDATE per round of nearly as many rows
    (the accounts of 10,000 uniform accounts a few hundred milliseconds of load touch), which
    the next round writes anyway.

    Writers of this process hand their durable groups to `feed` (`ShardRegistry(on_durable=
    projector.feed.add)`), so rounds take their events from memory (`GroupFeed`).
    """

    RETRY_SECONDS = 1.0
    INTERVAL_SECONDS = 1.0
    MAX_INTERVAL_SECONDS = 3.0
    BUSY_SHARE = 0.1
    """Why longer rounds: projected from memory over 10,000 accounts, a round cost 3.6-3.9 µs
    of CPU per transfer with 25,000 transfers in it (about a second of load), 2.6-2.8 with
    50,000, since most of its cost is per account touched, not per event. Under the distributed
    benchmark (`python -m bench http-distributed`, five alternating pairs) PostgreSQL's CPU per
    transfer fell from 1.4-2.7 to 0.6-1.1 µs and the throughput rose by 7% in the median pair
    (-2% to +20%); the read models then trail the log by up to the ceiling plus a round."""

    def __init__(self) -> None:
        # Ledger -> the last seq a round should reach (None: the end of the log).
        self._dirty: dict[str, int | None] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.feed = GroupFeed()

    def notify(self, ledger: str, last_seq: int) -> None:
        """`ledger` committed up to `last_seq` (negative: unknown, project to the end)."""
        with self._wake:
            self._mark(ledger, last_seq if last_seq >= 0 else None)
            self._wake.notify()

    def _mark(self, ledger: str, until_seq: int | None) -> None:
        """Add a ledger to the next round (with `_wake` held); the further target wins."""
        if ledger in self._dirty:
            known = self._dirty[ledger]
            until_seq = None if known is None or until_seq is None else max(known, until_seq)
        self._dirty[ledger] = until_seq

    def start(self, shards: ShardRegistry) -> None:
        self._shards = shards
        self._thread = threading.Thread(target=self._run, name="ledger-projector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        from ledger.models import Ledger
        from ledger.projector import catch_up

        next_round = 0.0
        while True:
            with self._wake:
                while not self._stopping and (
                    not self._dirty or time.monotonic() < next_round
                ):
                    self._wake.wait(max(next_round - time.monotonic(), 0) or None)
                if self._stopping:
                    return
                dirty, self._dirty = self._dirty, {}
            started = time.monotonic()
            failed = []
            for code, until_seq in sorted(dirty.items()):
                try:
                    close_old_connections()
                    catch_up(Ledger.objects.get(code=code), self._shards.get(code).store,
                             self.feed, until_seq)
                except Exception:
                    log.warning("projecting ledger %s failed; retrying", code, exc_info=True)
                    failed.append((code, until_seq))
            # A failed round may have spent its time waiting for the database: it does not
            # stretch the pause (the retry has its own).
            busy = 0.0 if failed else (time.monotonic() - started) / self.BUSY_SHARE
            next_round = started + max(self.INTERVAL_SECONDS,
                                       min(busy, self.MAX_INTERVAL_SECONDS))
            if failed:
                with self._wake:
                    for code, until_seq in failed:
                        self._mark(code, until_seq)
                    if not self._stopping:
                        self._wake.wait(self.RETRY_SECONDS)
