"""A group commit is durable when `append` returns: its WAL record has reached the disk.

The store writes a group's batch unsynced and then syncs the WAL itself (rocks.py, `append`),
so that the GIL is free while the disk works. These tests watch the real system calls of a
store under strace, and what happens when that sync fails.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.port import EventStoreError
from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import WriteFailed, Writer, WriterStopped
from tests.support.failing_disk import SyncFails

ROOT = Path(__file__).resolve().parents[2]
GROUPS = 6
START, DONE = "group-start", "group-done"

_CHILD = f"""
import os, sys
from ledger.eventstore.rocks import RocksEventStore
from tests.unit.eventstore_contract import Driver, Workload
workload = Workload(Driver(RocksEventStore(sys.argv[1], "EUR")), seed=5)
for _ in range({GROUPS}):
    os.write(1, b"{START}\\n")
    workload.group()
    os.write(1, b"{DONE}\\n")
"""
# A WAL file is NNNNNN.log; RocksDB's info log is LOG, its manifest MANIFEST-NNNNNN.
_WAL_WRITE = re.compile(r"\b(?:write|writev|pwrite64|pwritev2?)\(\d+<(?P<path>[^>]*/\d+\.log)>")
_WAL_SYNC = re.compile(r"\b(?:fdatasync|fsync)\(\d+<(?P<path>[^>]*/\d+\.log)>")


def _syscalls(tmp_path: Path) -> list[str]:
    """The child's file writes and syncs, and its markers, in the order they were made."""
    trace = tmp_path / "strace.out"
    subprocess.run(
        ["strace", "-f", "-qq", "-y", "-o", str(trace),
         "-e", "trace=write,writev,pwrite64,pwritev,pwritev2,fdatasync,fsync",
         sys.executable, "-c", _CHILD, str(tmp_path / "EUR")],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    return trace.read_text().splitlines()


def test_every_group_commit_syncs_its_wal_record_before_it_returns(tmp_path: Path) -> None:
    lines = _syscalls(tmp_path)
    groups, in_group, unsynced = 0, False, None
    for line in lines:
        if f'"{START}' in line:
            in_group, unsynced = True, None
        elif f'"{DONE}' in line:
            assert in_group and unsynced is None, f"group {groups} returned with its WAL unsynced"
            groups += 1
            in_group = False
        elif in_group and (match := _WAL_WRITE.search(line)):
            unsynced = match["path"]
        elif in_group and (match := _WAL_SYNC.search(line)) and match["path"] == unsynced:
            unsynced = None
    assert groups == GROUPS


def test_after_a_failed_sync_nothing_is_acknowledged_and_the_writer_stops(tmp_path: Path):
    store = RocksEventStore(tmp_path / "EUR", "EUR")
    writer = Writer(store).start()
    a, b = (account_id_for("EUR", f"did:{name}") for name in "ab")
    try:
        writer.execute(Request([Command("open_account", "open-a", did="did:a"),
                                Command("open_account", "open-b", did="did:b"),
                                Command("mint", "mint-a", account=a, amount=100)]))
        store._db = SyncFails(store._db)

        future = writer.submit(Request([Command("transfer", "t1", account=a, to=b, amount=60)]))

        with pytest.raises(WriteFailed):
            future.result(10)
        # The group is in RocksDB's memory but perhaps not on disk: the store answers nothing
        # more, so the writer cannot reload it as if it were durable, and stops.
        with pytest.raises(EventStoreError, match="syncing the WAL"):
            store.head()
        writer._thread.join(10)
        with pytest.raises(WriterStopped):
            writer.submit(Request([Command("transfer", "t2", account=a, to=b, amount=1)]))
    finally:
        writer.stop()
        store.close()
