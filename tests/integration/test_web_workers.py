"""The distributed web process (`python -m config.web_workers`): every worker takes
connections, a worker that dies is replaced on the same socket, SIGTERM stops them all, and a
worker that cannot start stops the process instead of being restarted forever."""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import free_port, terminate, wait_for

ROOT = Path(__file__).resolve().parents[2]
PID_APP = "tests.support.pid_app:application"
WORKERS = 3
CONNECTIONS = 30


def start(tmp_path: Path, app: str = PID_APP) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "config.web_workers", "--port", str(port), "--workers",
             str(WORKERS), "--app", app, "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, port, log


def serving_pids(port: int) -> set[int]:
    """Open all connections first, then ask each which process serves it: connections that
    arrive together are the case a shared socket gave to a single worker."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                   for _ in range(CONNECTIONS)]
    try:
        for connection in connections:
            connection.connect()
        pids = set()
        for connection in connections:
            connection.request("GET", "/")
            pids.add(int(connection.getresponse().read()))
        return pids
    finally:
        for connection in connections:
            connection.close()


def answers(port: int) -> bool:
    try:
        return bool(serving_pids(port))
    except OSError:
        return False


@pytest.fixture
def web(tmp_path):
    process, port, log = start(tmp_path)
    wait_for(lambda: process.poll() is None and answers(port), 60, "the web workers")
    yield process, port, log
    terminate(process)


def every_worker(port: int) -> set[int] | None:
    pids = serving_pids(port)
    return pids if len(pids) == WORKERS else None


def test_connections_are_spread_over_all_workers(web):
    _, port, _ = web
    # Each worker has its own SO_REUSEPORT socket: 30 connections leave a worker out with
    # probability about 3 * (2/3)^30 (a shared socket gave them all to the first to wake).
    # Workers start one by one, so the first tries may find only some of them; once all
    # serve, every round of connections must reach every worker.
    wait_for(lambda: every_worker(port), 30, "connections on every worker")
    for _ in range(3):
        assert len(serving_pids(port)) == WORKERS


def test_keep_alive_responses_are_not_held_by_nagles_algorithm(web):
    # A response goes out in two writes (head, body). With Nagle's algorithm on, the second
    # waits for the client's delayed ACK of the first: about 40 ms per request on loopback.
    _, port, _ = web
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        took = []
        for _ in range(21):
            started = time.perf_counter()
            connection.request("GET", "/")
            connection.getresponse().read()
            took.append(time.perf_counter() - started)
    finally:
        connection.close()
    assert statistics.median(took) < 0.02, took


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(web):
    process, port, _ = web
    before = wait_for(lambda: every_worker(port), 30, "connections on every worker")
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> set[int] | None:
        pids = serving_pids(port)
        return pids if len(pids) == WORKERS and victim not in pids else None

    after = wait_for(replaced, 60, "a replacement worker")
    assert before - {victim} <= after

    assert terminate(process) == 0
    for pid in after:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text()


def test_a_worker_that_cannot_start_stops_the_process(tmp_path):
    process, _, log = start(tmp_path, app="tests.support.no_such_module:application")
    try:
        assert process.wait(60) == 3, log.read_text()  # uvicorn's STARTUP_FAILURE
    finally:
        terminate(process)
