"""The HTTP client the load scenarios share, and the requests they all make."""

from __future__ import annotations

import http.client
import random
import time

import orjson

from ledger.core.state import account_id_for

SETUP_BATCH = 8_000


class Client:
    """One keep-alive HTTP/1.1 connection with the API key."""

    def __init__(self, port: int, key: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def json(self, method: str, path: str, payload=None):
        status, data = self.call(method, path, None if payload is None else orjson.dumps(payload))
        if status >= 300:
            raise RuntimeError(f"{method} {path} -> {status}: {data[:300]!r}")
        return orjson.loads(data)


def accounts_open(client: Client, ledger: str, dids: list[str], fund: int | None) -> list[str]:
    """Open an account per DID through the API and, unless `fund` is None, mint `fund` minor
    units into each; returns their ids. Any rejection stops the benchmark."""
    ids = [account_id_for(ledger, did) for did in dids]
    opens = [{"type": "open_account", "did": did, "idempotency_key": f"open-{did}"}
             for did in dids]
    mints = [] if fund is None else [
        {"type": "mint", "account": a, "amount": fund, "idempotency_key": f"fund-{a}"}
        for a in ids
    ]
    for items in (opens, mints):
        for i in range(0, len(items), SETUP_BATCH):
            reply = client.json("POST", "/api/v1/transfers",
                                {"ledger": ledger, "transfers": items[i:i + SETUP_BATCH]})
            assert all(r["status"] == "ok" for r in reply["results"]), "set-up failed"
    return ids


def single_transfer(client: Client, ids: list[str], rng: random.Random, key: str) -> float:
    """POST one transfer between two random accounts; its latency in seconds. Raises unless
    it was applied."""
    a, b = rng.sample(ids, 2)
    body = orjson.dumps({"transfers": [{"from": a, "to": b, "amount": 1, "idempotency_key": key}]})
    started = time.perf_counter()
    status, data = client.call("POST", "/api/v1/transfers", body)
    elapsed = time.perf_counter() - started
    if status != 200 or b'"status":"ok"' not in data:
        raise RuntimeError(f"single transfer -> {status}: {data[:200]!r}")
    return elapsed


def balance_read(client: Client, ids: list[str], rng: random.Random) -> float:
    """GET one random account's balances; the latency in seconds. Raises unless it was 200."""
    path = f"/api/v1/balances?account={rng.choice(ids)}"
    started = time.perf_counter()
    status, data = client.call("GET", path)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"balance -> {status}: {data[:200]!r}")
    return elapsed
