"""This process's ledger runtime: the shard registry, the command bus and the projector.

Created lazily on first use, never at import or app start-up, so management commands that do
not touch the ledger (migrate, makemigrations, ...) never open a RocksDB shard. In embedded
mode, `LEDGERFS_PROJECTOR = "thread"` keeps the read models in step from a background thread
woken by each commit; `"manual"` (tests) leaves projection to explicit `catch_up` calls.
"""

from __future__ import annotations

import atexit
import logging
import threading

from django.conf import settings
from django.db import close_old_connections

from ledger.bus import CommandBus, InProcessBus
from ledger.shards import ShardRegistry

log = logging.getLogger(__name__)

_lock = threading.Lock()
_runtime: Runtime | None = None


class Runtime:
    def __init__(self) -> None:
        self.projector = BackgroundProjector() if settings.LEDGERFS_PROJECTOR == "thread" else None
        on_commit = self.projector.notify if self.projector else None
        self.shards = ShardRegistry(settings.LEDGERFS_DATA_DIR / "shards", on_commit=on_commit)
        self.bus: CommandBus = InProcessBus(self.shards)

    def close(self) -> None:
        if self.projector is not None:
            self.projector.stop()
        self.shards.close()


def runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime()
            if _runtime.projector is not None:
                _runtime.projector.start(_runtime.shards)
        return _runtime


def shutdown() -> None:
    """Stop writers and close shards (at exit, and between tests)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None


atexit.register(shutdown)


class BackgroundProjector:
    """Projects ledgers whose writers reported a commit, off the request and write paths."""

    def __init__(self) -> None:
        self._dirty: set[str] = set()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def notify(self, ledger: str, last_seq: int) -> None:
        with self._wake:
            self._dirty.add(ledger)
            self._wake.notify()

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

        while True:
            with self._wake:
                while not self._dirty and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                dirty, self._dirty = self._dirty, set()
            close_old_connections()
            for code in sorted(dirty):
                try:
                    catch_up(Ledger.objects.get(code=code), self._shards.get(code).store)
                except Exception:
                    # The cursor did not move; the next commit retries from the same place.
                    log.exception("projecting ledger %s failed", code)
