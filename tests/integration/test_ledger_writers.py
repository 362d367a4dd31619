"""`manage.py ledger_writers` for real (PostgreSQL, a private Redis, writer processes): one
writer per registered ledger, one more for a ledger registered while it runs, a killed writer
started again, and SIGTERM stopping every writer cleanly (heartbeats withdrawn).

Ledgers created through the API in distributed mode are covered by the API suite
(`tests/e2e/test_http_api.py[distributed]`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg

from ledger.transport import keys
from tests.support.services import ROOT, service_env, wait_for


def test_a_writer_per_registered_ledger_restarted_when_killed(
    tmp_path, postgres_url, redis_url, redis_server
):
    env = service_env(postgres_url, redis_url, tmp_path / "data", LEDGERFS_LOG_LEVEL="WARNING")
    log = tmp_path / "writers.log"
    redis = redis_server.client()

    def writer_pid(code: str) -> int | None:
        value = redis.get(keys.writer_heartbeat(code))
        return int(value) if value is not None else None

    with log.open("w") as output:
        supervisor = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "ledger_writers", "--ledger", "EUR"],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        first = wait_for(lambda: writer_pid("EUR"), 30, "the writer of EUR")
        # Registered as POST /api/v1/ledgers registers it: the supervisor starts its writer.
        with psycopg.connect(postgres_url) as db:
            db.execute("INSERT INTO ledger_ledger (code, scale, created_at) "
                       "VALUES ('GBP', 2, now())")
        wait_for(lambda: writer_pid("GBP"), 30, "the writer of a newly registered ledger")
        os.kill(first, signal.SIGKILL)
        again = wait_for(lambda: (writer_pid("EUR") or first) != first and writer_pid("EUR"),
                         30, "the killed writer's successor")
        assert again != first
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0, log.read_text()
        # Each writer stopped gracefully: it withdrew its heartbeat on the way out.
        assert writer_pid("EUR") is None and writer_pid("GBP") is None, log.read_text()
        assert "writer of ledger EUR exited with -9" in log.read_text()
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(10)
