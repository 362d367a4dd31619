"""A RocksDB handle whose WAL sync fails as a dying disk's would, for the tests of what the store
and the writer do then (`store._db = SyncFails(store._db)`)."""

from __future__ import annotations


class SyncFails:
    """The store's RocksDB handle, except that syncing the WAL fails."""

    def __init__(self, db) -> None:
        self._db = db

    def flush_wal(self, sync: bool) -> None:
        raise Exception("IO error: While fdatasync: Input/output error")  # as rocksdict raises

    def __getattr__(self, name: str):
        return getattr(self._db, name)
