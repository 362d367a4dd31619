"""A writer started with `LEDGERFS_WRITER_CPUS` runs on those CPUs, every one of its Python
threads (bus reader, writer, syncer, replier, stream publisher, projector) included, and
RocksDB's background threads on the others, at a lower priority: the real process, its
placement read from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.cpus import ENV, STORAGE_THREADS_NICE, parse_cpus
from tests.support.services import WriterProcess, service_env

CORES = os.cpu_count() or 1


def allowed_cpus(task: Path) -> frozenset[int]:
    for line in (task / "status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return parse_cpus(line.split(":", 1)[1])
    raise AssertionError(f"no Cpus_allowed_list in {task}/status")


@pytest.mark.skipif(CORES < 2, reason="pinning needs at least two CPUs")
def test_the_writers_threads_run_on_its_cpus_and_rocksdbs_on_the_others(
    tmp_path, postgres_url, redis_url, redis_server
):
    last = CORES - 1
    env = service_env(postgres_url, redis_url, tmp_path / "data", LEDGERFS_LOG_LEVEL="WARNING",
                      **{ENV: str(last)})
    writer = WriterProcess("EUR", env, tmp_path / "writer.log").start(redis_server.client())
    try:
        tasks = list(Path(f"/proc/{writer.process.pid}/task").iterdir())
        placements = {(task / "comm").read_text().strip() + "/" + task.name: allowed_cpus(task)
                      for task in tasks}
        niceness = {task.name: int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
                    for task in tasks if (task / "comm").read_text().startswith("rocksdb:")}
    finally:
        writer.stop()
    ours = {name: cpus for name, cpus in placements.items() if not name.startswith("rocksdb:")}
    rocksdb = {name: cpus for name, cpus in placements.items() if name.startswith("rocksdb:")}
    # main, writer, syncer, replier, publisher, projector
    assert len(ours) >= 6, placements
    assert set(ours.values()) == {frozenset({last})}, placements
    assert rocksdb, placements  # flush and compaction
    assert set(rocksdb.values()) == {frozenset(range(last))}, placements
    assert set(niceness.values()) == {STORAGE_THREADS_NICE}, niceness
