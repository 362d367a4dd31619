"""The live stream in distributed mode: PostgreSQL, a private Redis, a writer process, uvicorn
with two workers and `manage.py monitor`. Committed events travel writer -> Redis event stream
-> monitor (relay) -> channels_redis -> the worker holding the WebSocket; AML checks, alerts and
totals land in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import psycopg
import pytest
import websockets

from tests.support.services import (
    ROOT,
    Api,
    WebProcess,
    WriterProcess,
    api_key_create,
    service_env,
    wait_for,
)


@pytest.fixture
def stack(tmp_path, postgres_url, redis_url, redis_server):
    env = service_env(postgres_url, redis_url, tmp_path / "data", LEDGERFS_LOG_LEVEL="WARNING")
    writer = WriterProcess("EUR", env, tmp_path / "writer.log").start(redis_server.client())
    web = WebProcess(env, tmp_path / "web.log").start()
    log = tmp_path / "monitor.log"
    monitor = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "monitor"], env=env,
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_for(lambda: "monitor up" in log.read_text() or monitor.poll() is not None, 30,
             "the monitor")
    assert monitor.poll() is None, log.read_text()
    key = api_key_create(env)
    api = Api(web.port, key)
    yield api, key, web, postgres_url
    api.close()
    monitor.terminate()
    monitor.wait(15)
    web.stop()
    writer.stop()


async def events_until(ws, count: int) -> list[dict]:
    events: list[dict] = []
    async with asyncio.timeout(15):
        while len(events) < count:
            frame = json.loads(await ws.recv())
            assert frame["type"] in ("events", "ready"), frame
            events += frame.get("events", [])
    return events


def test_events_reach_websockets_and_the_monitor_through_redis(stack):
    api, key, web, database = stack
    opened = api.transfers("EUR", [
        {"type": "open_account", "did": f"did:{n}", "idempotency_key": f"o-{n}"}
        for n in ("a", "b")])
    a, b = (r["event"]["details"]["account"] for r in opened)
    api.transfers("EUR", [{"type": "mint", "account": a, "amount": 400_000,
                           "idempotency_key": f"m-{i}"} for i in range(4)])
    url = f"ws://127.0.0.1:{web.port}/ws/events/?ledger=EUR"
    headers = {"Authorization": f"Bearer {key}"}

    def pay(keys: list[str], amount: int = 1) -> list[int]:
        results = api.transfers("EUR", [{"from": a, "to": b, "amount": amount,
                                         "idempotency_key": k} for k in keys])
        return [r["event"]["seq"] for r in results]

    async def scenario() -> int:
        async with websockets.connect(url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            live = pay([f"live-{i}" for i in range(10)]) + pay(["large"], 1_000_000)
            assert [e["seq"] for e in await events_until(ws, len(live))] == live
            last = live[-1]
        missed = pay([f"missed-{i}" for i in range(5)])
        async with websockets.connect(f"{url}&after_seq={last}",
                                      additional_headers=headers) as ws:
            assert [e["seq"] for e in await events_until(ws, len(missed))] == missed
        return missed[-1]

    head = asyncio.run(scenario())

    def monitored() -> tuple | None:
        with psycopg.connect(database) as db:
            state = db.execute("SELECT last_seq, outstanding_minor, customer_funds_minor "
                               "FROM monitoring_monitorstate WHERE ledger = 'EUR'").fetchone()
            alerts = db.execute("SELECT rule, account FROM aml_alert ORDER BY id").fetchall()
            checks = db.execute("SELECT count(*) FROM aml_amlcheck").fetchone()[0]
        return (state, alerts, checks) if state and state[0] == head else None

    state, alerts, checks = wait_for(monitored, 15, "the monitor to reach the head")
    assert state == (head, 1_600_000, 1_600_000)
    assert alerts == [("large_transfer", a), ("new_account_inflow", b)]
    assert checks == 4 + 11 + 5
