"""A writer started with `LEDGERFS_WRITER_CPUS` runs on those CPUs, every one of its threads
(bus reader, writer, replier, stream publisher, projector) included: the real process, its
placement read from /proc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.cpus import ENV, parse_cpus
from tests.support.services import WriterProcess, service_env

CORES = os.cpu_count() or 1


def allowed_cpus(task: Path) -> frozenset[int]:
    for line in (task / "status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return parse_cpus(line.split(":", 1)[1])
    raise AssertionError(f"no Cpus_allowed_list in {task}/status")


@pytest.mark.skipif(CORES < 2, reason="pinning needs at least two CPUs")
def test_every_thread_of_the_writer_runs_on_the_writers_cpus(
    tmp_path, postgres_url, redis_url, redis_server
):
    last = CORES - 1
    env = service_env(postgres_url, redis_url, tmp_path / "data", LEDGERFS_LOG_LEVEL="WARNING",
                      **{ENV: str(last)})
    writer = WriterProcess("EUR", env, tmp_path / "writer.log").start(redis_server.client())
    try:
        tasks = list(Path(f"/proc/{writer.process.pid}/task").iterdir())
        placements = {task.name: allowed_cpus(task) for task in tasks}
    finally:
        writer.stop()
    assert len(placements) >= 5, placements  # main, writer, replier, publisher, projector
    assert set(placements.values()) == {frozenset({last})}, placements
