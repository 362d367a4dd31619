"""Crash safety: SIGKILL a writer process mid-stream; nothing acknowledged is lost or doubled.

The writer process (`crash_writer.py`) prints every acknowledgement only after its group is
durable. The test kills it at a random point while batches are in flight, restarts a writer on
the same shard, and checks every acknowledged command is in the log exactly once, the hash
chain verifies from seq 0, and repeating the acknowledged commands changes nothing.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from ledger.core.commands import Request
from ledger.eventstore.rocks import RocksEventStore
from ledger.replay import compare_states, replay
from ledger.writer import Writer
from tests.integration import crash_writer  # the child's commands, so repeats match

SCRIPT = Path(crash_writer.__file__)
ROOT = Path(__file__).resolve().parents[2]


def run_until_killed(path: Path, acks_before_kill: int) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acked: dict[str, int] = {}
    try:
        assert process.stdout.readline().strip() == "READY"
        deadline = time.monotonic() + 60
        while len(acked) < acks_before_kill and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("ACK "):
                _, key, seq = line.split()
                acked[key] = int(seq)
        process.send_signal(signal.SIGKILL)
        # Lines printed before the kill are acknowledgements too; read them all.
        for line in process.stdout:
            if line.startswith("ACK "):
                _, key, seq = line.split()
                acked[key] = int(seq)
    finally:
        process.kill()
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    return acked


@pytest.mark.parametrize("acks_before_kill", [400, 3_000])
def test_sigkill_loses_no_acknowledged_command_and_applies_none_twice(tmp_path, acks_before_kill):
    path = tmp_path / "EUR"
    random.seed(acks_before_kill)
    acked = run_until_killed(path, acks_before_kill + random.randrange(200))
    assert len(acked) >= acks_before_kill

    store = RocksEventStore(path, "EUR")
    try:
        replayed, count = replay(store)  # raises ChainBroken if any hash does not verify
        by_key = collections.Counter(
            orjson.loads(event.body)["idempotency_key"] for event in store.read()
        )
        missing = [key for key in acked if by_key[key] == 0]
        doubled = [key for key, times in by_key.items() if key and times > 1]
        assert missing == []
        assert doubled == []
        for key, seq in acked.items():
            assert orjson.loads(store.get(seq).body)["idempotency_key"] == key

        writer = Writer(store).start()
        try:
            assert compare_states(writer.machine.state, replayed) == []
            sample = random.sample(sorted(acked), 50)
            results = writer.execute(Request([crash_writer.command_for(key) for key in sample]))
            # The very same requests again: replays of the first outcome, no new events.
            assert all(r.ok and r.replayed for r in results)
            assert [r.seq for r in results] == [acked[key] for key in sample]
            assert writer.machine.state.next_seq == count
        finally:
            writer.stop()
    finally:
        store.close()
