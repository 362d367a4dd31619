"""The distributed mode for real: PostgreSQL, a private Redis, one writer process per ledger
and uvicorn with two workers, driven over HTTP.

Checks that writes go through the Redis bus to the writer processes, that every web worker
reads its own and the other workers' acknowledged writes at once (secondary instances caught up
to the writers' head), that the read models in PostgreSQL follow (EUR projected by its writer,
USD's writer started with `--no-project` and projected by `manage.py ledger_projector`, the
Procfile's arrangement), and that a ledger whose writer is down answers with a retryable 503
and a stable code.
"""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from ledger.core.state import account_id_for
from tests.support.processes import terminate
from tests.support.services import (
    ROOT,
    Api,
    WebProcess,
    WriterProcess,
    api_key_create,
    service_env,
    wait_for,
)

LEDGERS = ("EUR", "USD")


@pytest.fixture
def stack(tmp_path, postgres_url, redis_url, redis_server):
    env = service_env(postgres_url, redis_url, tmp_path / "data", LEDGERFS_LOG_LEVEL="WARNING")
    writers = {
        "EUR": WriterProcess("EUR", env, tmp_path / "writer-EUR.log"),
        "USD": WriterProcess("USD", env, tmp_path / "writer-USD.log", "--no-project"),
    }
    for writer in writers.values():
        writer.start(redis_server.client())
    projector_log = (tmp_path / "projector.log").open("a")
    projector = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "ledger_projector"],
                                 env=env, stdout=projector_log, stderr=subprocess.STDOUT)
    web = WebProcess(env, tmp_path / "web.log").start()
    api = Api(web.port, api_key_create(env))
    yield api, writers, postgres_url
    api.close()
    web.stop()
    assert terminate(projector) == 0, (tmp_path / "projector.log").read_text()
    projector_log.close()
    for writer in writers.values():
        writer.stop()


def open_and_fund(api: Api, ledger: str, names: list[str], amount: int) -> list[str]:
    items = [{"type": "open_account", "did": f"did:{n}", "idempotency_key": f"o-{n}"}
             for n in names]
    ids = [account_id_for(ledger, f"did:{n}") for n in names]
    items += [{"type": "mint", "account": a, "amount": amount, "idempotency_key": f"m-{a}"}
              for a in ids]
    assert all(r["status"] == "ok" for r in api.transfers(ledger, items))
    return ids


def test_writes_and_reads_through_the_distributed_stack(stack):
    api, _, database = stack
    eur = open_and_fund(api, "EUR", ["a", "b"], 1_000)
    usd = open_and_fund(api, "USD", ["a"], 500)
    # Read-your-writes across workers: every call is a new connection, so reads land on
    # either worker, right after the write was acknowledged by the other one or this one.
    for i in range(1, 21):
        [result] = api.transfers("EUR", [{"from": eur[0], "to": eur[1], "amount": 1,
                                          "idempotency_key": f"t{i}"}])
        assert result["status"] == "ok" and result["event"]["idempotency_key"] == f"t{i}"
        balance = api.get("/balances", account=eur[1]).json()
        assert balance["balances"]["available"] == 1_000 + i
        assert balance["seq"] >= result["event"]["seq"]
    # A resent transfer is answered from idempotency, with its original event.
    [again] = api.transfers("EUR", [{"from": eur[0], "to": eur[1], "amount": 1,
                                     "idempotency_key": "t20"}])
    assert again["replayed"] is True and again["event"]["idempotency_key"] == "t20"
    assert api.get("/balances", account=usd[0]).json()["balances"]["available"] == 500
    assert api.get(f"/ledgers/{'EUR'}").json()["head_seq"] == again["event"]["seq"]

    def projected() -> bool:
        with psycopg.connect(database) as db:
            rows = dict(db.execute(
                "SELECT id, available FROM ledger_account WHERE id = ANY(%s)", [eur + usd]
            ).fetchall())
        return rows == {eur[0]: 980, eur[1]: 1_020, usd[0]: 500}

    wait_for(projected, 15, "the projection into PostgreSQL (EUR's writer, the projector)")


def test_a_ledger_whose_writer_is_down_answers_503_and_recovers(stack, redis_server):
    api, writers, _ = stack
    [a, b] = open_and_fund(api, "EUR", ["x", "y"], 100)
    writers["EUR"].stop()
    started = time.monotonic()
    reply = api.post("/transfers", {"ledger": "EUR", "transfers": [
        {"from": a, "to": b, "amount": 5, "idempotency_key": "during"}]})
    assert reply.status_code == 503
    assert reply.json()["code"] == "ledger_unavailable"
    assert time.monotonic() - started < 5  # told at once, not after the bus timeout
    # Reads keep working from the log while the writer is down; the other ledger writes.
    reply = api.get("/balances", account=a)
    assert reply.status_code == 200, reply.text
    assert reply.json()["balances"]["available"] == 100
    [usd] = open_and_fund(api, "USD", ["z"], 7)
    writers["EUR"].start(redis_server.client())
    [result] = api.transfers("EUR", [{"from": a, "to": b, "amount": 5,
                                      "idempotency_key": "during"}])
    assert result["status"] == "ok" and result["replayed"] is False
    assert api.get("/balances", account=b).json()["balances"]["available"] == 105
