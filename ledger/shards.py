"""The shards of this process: one RocksDB event store and one writer per ledger.

A ledger code names a shard; its data lives in `<root>/<CODE>/`. In embedded mode the web
process hosts every shard's writer in a thread; in distributed mode each writer process hosts
one. Either way a shard's store is opened read-write by exactly one process (RocksDB's lock
enforces it).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import Writer

LEDGER_CODE = re.compile(r"[A-Z][A-Z0-9]{0,11}")


class UnknownLedger(LookupError):
    """No shard exists for this ledger code."""


def valid_ledger_code(code: str) -> bool:
    """Ledger codes are upper-case letters and digits (an ISO 4217 code, or a domain name)."""
    return isinstance(code, str) and LEDGER_CODE.fullmatch(code) is not None


class Shard:
    """A ledger's store and its running writer."""

    def __init__(self, code: str, store: RocksEventStore, writer: Writer) -> None:
        self.code = code
        self.store = store
        self.writer = writer

    def close(self) -> None:
        self.writer.stop()
        self.store.close()


class ShardRegistry:
    def __init__(
        self, root: Path, *, on_commit: Callable[[str, int], None] | None = None,
        sync: bool = True,
    ) -> None:
        self.root = Path(root)
        self.on_commit = on_commit
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
        try:
            writer.start()
        except Exception:
            store.close()
            raise
        return Shard(code, store, writer)
