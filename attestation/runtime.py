"""This process's sealers and proof readers, one per ledger shard.

Where a sealer reads events depends on who owns the shards' event stores here:
- embedded mode: this process's ledger runtime owns them (writers in threads) and calls
  `attach` when it starts; sealers then read the very store objects the writers append to
  (RocksDB admits one read-write opener per database). If `LEDGERFS_BEAT == "thread"`, the
  Celery beat schedule also runs on a thread of this process (`config.celery.InProcessBeat`),
  which seals every second. `detach` stops it before the runtime closes the stores.
- otherwise (Celery worker, management commands): each shard's event store is opened as a
  RocksDB secondary instance, caught up with its writer before every use.

A shard's seal store is opened read-write by the process that seals it (RocksDB's lock makes
that process the only sealer; another gets `SealerBusy`) and as a secondary instance by
processes that only serve proofs.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Protocol

from django.conf import settings

from attestation.keys import signing_key_get
from attestation.sealer import AttestationError, NotSealed, Sealer, SealReader
from attestation.store import SealStore, SealStoreError
from ledger.eventstore.port import EventStore
from ledger.eventstore.rocks import RocksEventStore
from ledger.shards import ShardRegistry, UnknownLedger, valid_ledger_code

log = logging.getLogger(__name__)

READER_CATCH_UP_SECONDS = 0.2
"""A proof reader follows the sealer at most this often (checkpoints come once a second)."""


class SealerBusy(AttestationError):
    """Another process holds this shard's seal store: it is the shard's sealer."""

    code = "sealer_busy"


class EventStores(Protocol):
    def get(self, code: str) -> EventStore:
        """The shard's event store, up to date with its writer."""

    def codes(self) -> list[str]: ...

    def close(self) -> None: ...


class SharedEventStores:
    """The stores of this process's own writers (embedded mode)."""

    def __init__(self, shards: ShardRegistry) -> None:
        self.shards = shards

    def get(self, code: str) -> EventStore:
        return self.shards.get(code).store

    def codes(self) -> list[str]:
        return self.shards.codes()

    def close(self) -> None:
        """The ledger runtime closes its stores itself."""


class SecondaryEventStores:
    """RocksDB secondary instances of shards whose writers run in other processes."""

    def __init__(self, root: Path, scratch: Path) -> None:
        self.root = root
        self.scratch = scratch
        self._stores: dict[str, RocksEventStore] = {}
        self._lock = threading.Lock()

    def codes(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if valid_ledger_code(p.name))

    def get(self, code: str) -> EventStore:
        with self._lock:
            store = self._stores.get(code)
            if store is None:
                if not valid_ledger_code(code) or not (self.root / code).is_dir():
                    raise UnknownLedger(code)
                store = self._stores[code] = RocksEventStore(
                    self.root / code, code, secondary_path=self._scratch(code)
                )
            store.catch_up()
            return store

    def _scratch(self, code: str) -> Path:
        path = self.scratch / f"{code}-events-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        with self._lock:
            for code, store in self._stores.items():
                store.close()
                shutil.rmtree(self._scratch(code), ignore_errors=True)
            self._stores.clear()


class Attestation:
    """Sealers and readers of this process, over one data directory."""

    def __init__(self, data_dir: Path, events: EventStores, *, owns_shards: bool) -> None:
        self.data_dir = data_dir
        self.events = events
        self.owns_shards = owns_shards
        self.root = data_dir / "attestation"
        self._scratch = self.root / ".secondary"
        self._sealers: dict[str, Sealer] = {}
        self._readers: dict[str, tuple[SealReader, list[float]]] = {}
        self._lock = threading.RLock()

    def codes(self) -> list[str]:
        return self.events.codes()

    def event_store(self, code: str) -> EventStore:
        return self.events.get(code)

    def sealer(self, code: str) -> Sealer:
        """This process's sealer of the shard, opening its seal store read-write."""
        with self._lock:
            sealer = self._sealers.get(code)
            if sealer is not None:
                self.events.get(code)  # catches a secondary instance up with the writer
                return sealer
            events = self.events.get(code)
            key = signing_key_get(ledger=code)
            reader = self._readers.pop(code, None)
            if reader is not None:
                reader[0].seals.close()
            try:
                seals = SealStore(self.root / code, code)
            except SealStoreError as err:
                raise SealerBusy(
                    f"ledger {code} is sealed by another process (a running server or Celery "
                    f"worker holds {self.root / code}): {err}"
                ) from err
            try:
                sealer = Sealer(
                    events, seals, key, max_block_events=settings.LEDGERFS_SEAL_MAX_BLOCK_EVENTS
                )
            except BaseException:
                seals.close()
                raise
            self._sealers[code] = sealer
            return sealer

    def reader(self, code: str) -> SealReader:
        """Proofs of the shard: this process's sealer if it seals, else a secondary view."""
        with self._lock:
            sealer = self._sealers.get(code)
            if sealer is not None:
                return sealer
            if self.owns_shards and settings.LEDGERFS_BEAT != "celery":
                # Embedded: this process is the shard's sealer (a Celery worker is not).
                self.events.get(code)  # UnknownLedger for a ledger that does not exist
                return self.sealer(code)
            entry = self._readers.get(code)
            if entry is None:
                if not valid_ledger_code(code) or not (self.root / code).is_dir():
                    raise NotSealed(f"ledger {code} has no seals")
                scratch = self._reader_scratch(code)
                scratch.mkdir(parents=True, exist_ok=True)
                seals = SealStore(self.root / code, code, mode="secondary", secondary_path=scratch)
                entry = self._readers[code] = (SealReader(seals), [time.monotonic()])
            reader, caught_up = entry
            if time.monotonic() - caught_up[0] > READER_CATCH_UP_SECONDS:
                reader.seals.catch_up()
                caught_up[0] = time.monotonic()
            return reader

    def _reader_scratch(self, code: str) -> Path:
        return self._scratch / f"{code}-seals-{os.getpid()}"

    def close(self) -> None:
        with self._lock:
            for sealer in self._sealers.values():
                sealer.seals.close()
            for code, (reader, _) in self._readers.items():
                reader.seals.close()
                shutil.rmtree(self._reader_scratch(code), ignore_errors=True)
            self._sealers.clear()
            self._readers.clear()
            self.events.close()


_lock = threading.Lock()
_attached: Attestation | None = None
_standalone: Attestation | None = None
_beat = None


def attestation() -> Attestation:
    """This process's `Attestation`: the ledger runtime's when one runs here, else its own."""
    global _standalone
    with _lock:
        if _attached is not None:
            return _attached
        data_dir = Path(settings.LEDGERFS_DATA_DIR)
        if _standalone is None or _standalone.data_dir != data_dir:
            if _standalone is not None:
                _standalone.close()
            events = SecondaryEventStores(
                data_dir / "shards", data_dir / "attestation" / ".secondary"
            )
            _standalone = Attestation(data_dir, events, owns_shards=False)
        return _standalone


def attach(shards: ShardRegistry) -> None:
    """Called by `ledger.runtime` once this process's writers run (embedded mode)."""
    global _attached, _standalone, _beat
    with _lock:
        if _standalone is not None:
            _standalone.close()
            _standalone = None
        _attached = Attestation(
            Path(settings.LEDGERFS_DATA_DIR), SharedEventStores(shards), owns_shards=True
        )
    if settings.LEDGERFS_BEAT == "thread":
        from config.celery import InProcessBeat

        _beat = InProcessBeat().start()


def detach() -> None:
    """Called by `ledger.runtime` before it closes the shards: stop sealing, close stores."""
    global _attached, _beat
    if _beat is not None:
        _beat.stop()
        _beat = None
    with _lock:
        if _attached is not None:
            _attached.close()
            _attached = None


def close_standalone() -> None:
    """Close the attestation this process opened on its own (at exit; between tests)."""
    global _standalone
    with _lock:
        if _standalone is not None:
            _standalone.close()
            _standalone = None


atexit.register(close_standalone)
