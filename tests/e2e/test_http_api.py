"""The ledger API over real HTTP against the real server processes: the integrator's whole
journey, then the refusals. Twice: embedded (one uvicorn process: writer threads, background
projector, RocksDB shard) and distributed (PostgreSQL, Redis bus, a writer process per ledger,
two uvicorn workers); see `api_server` in conftest.py.

The tests of this module share one server and one ledger per mode and run in file order; each
builds on what the previous left (that is the journey).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def server(api_server: LiveServer) -> LiveServer:
    return api_server


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(server.api_key("integrator", "read,write,admin")) as client:
        yield client


@pytest.fixture(scope="module")
def book(api: httpx.Client) -> dict:
    """The ledger and accounts of the journey, created by the first test."""
    return {}


def transfers(api: httpx.Client, *items: dict, atomic: bool = False) -> list[dict]:
    response = api.post("/api/v1/transfers", json={"atomic": atomic, "transfers": list(items)})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def available(api: httpx.Client, account: str, query: str = "") -> int:
    response = api.get(f"/api/v1/balances?account={account}{query}")
    assert response.status_code == 200, response.text
    return response.json()["balances"]["available"]


def test_ledger_and_accounts(api, book) -> None:
    assert api.post("/api/v1/ledgers", json={"code": "EUR", "scale": 2}).status_code == 201
    assert api.post("/api/v1/ledgers", json={"code": "EUR", "scale": 2}).status_code == 200
    conflict = api.post("/api/v1/ledgers", json={"code": "EUR", "scale": 4})
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "ledger_exists_with_different_scale"
    for name in ("alice", "bob", "carol"):
        created = api.post("/api/v1/accounts", json={"ledger": "EUR", "did": f"did:ex:{name}"})
        assert created.status_code == 201 and created.json()["status"] == "open"
        book[name] = created.json()["id"]
    again = api.post("/api/v1/accounts", json={"ledger": "EUR", "did": "did:ex:alice"})
    assert again.status_code == 200 and again.json()["id"] == book["alice"]


def test_mint_and_transfer_are_read_back_at_once(api, book) -> None:
    alice, bob = book["alice"], book["bob"]
    [minted, paid] = transfers(
        api, {"type": "mint", "account": alice, "amount": 50_000, "idempotency_key": "mint-1"},
        {"from": alice, "to": bob, "amount": 12_50, "idempotency_key": "pay-1"},
    )
    assert minted["status"] == paid["status"] == "ok"
    book["seq_after_payment"] = paid["event"]["seq"]
    book["ts_after_payment"] = paid["event"]["ts"]
    # Read-your-writes: the projector runs in the background, the balance does not wait on it.
    assert available(api, alice) == 48_750 and available(api, bob) == 12_50


def test_hold_with_partial_release(api, book) -> None:
    alice, carol = book["alice"], book["carol"]
    placed = api.post("/api/v1/holds", json={"account": alice, "amount": 10_000,
                                             "beneficiary": carol, "idempotency_key": "hold-1"})
    assert placed.status_code == 201
    hold = placed.json()["hold"]["id"]
    balance = api.get(f"/api/v1/balances?account={alice}").json()["balances"]
    assert (balance["available"], balance["held"]) == (38_750, 10_000)
    released = api.post(f"/api/v1/holds/{hold}/release",
                        json={"amount": 6_000, "idempotency_key": "release-1"})
    assert released.status_code == 200 and released.json()["hold"]["captured"] == 6_000
    assert available(api, alice) == 42_750 and available(api, carol) == 6_000
    again = api.post(f"/api/v1/holds/{hold}/cancel", json={"idempotency_key": "cancel-1"})
    assert again.status_code == 409 and again.json()["code"] == "hold_already_resolved"


def test_a_failing_atomic_batch_applies_nothing(api, book) -> None:
    alice, bob = book["alice"], book["bob"]
    before = (available(api, alice), available(api, bob))
    results = transfers(
        api, {"from": alice, "to": bob, "amount": 100, "idempotency_key": "atomic-1"},
        {"from": bob, "to": alice, "amount": 10**9, "idempotency_key": "atomic-2"},
        atomic=True,
    )
    assert [r["code"] for r in results] == ["linked_command_failed", "insufficient_funds"]
    assert (available(api, alice), available(api, bob)) == before


def test_idempotent_replay_and_key_reuse(api, book) -> None:
    alice, bob = book["alice"], book["bob"]
    item = {"from": alice, "to": bob, "amount": 12_50, "idempotency_key": "pay-1"}
    [replay] = transfers(api, item)
    assert replay["replayed"] is True and replay["event"]["seq"] == book["seq_after_payment"]
    assert available(api, bob) == 12_50
    [conflict] = transfers(api, {**item, "amount": 1})
    assert conflict["code"] == "idempotency_key_reused_with_different_request"


def test_balances_as_of_a_seq_and_a_time(api, book) -> None:
    alice = book["alice"]
    assert available(api, alice, f"&as_of_seq={book['seq_after_payment']}") == 48_750
    seconds = book["ts_after_payment"] // 10**9 + 1  # within a second after the payment
    moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    as_of = api.get(f"/api/v1/balances?account={alice}&as_of={moment}")
    assert as_of.status_code == 200 and as_of.json()["seq"] >= book["seq_after_payment"]
    before = api.get(f"/api/v1/balances?account={alice}&as_of=2000-01-01T00:00:00Z")
    assert before.status_code == 404


def test_events_are_paged_with_a_cursor(api, book) -> None:
    alice = book["alice"]
    seqs, cursor, pages = [], -1, 0
    while True:
        page = api.get(f"/api/v1/events?account={alice}&limit=2&after_seq={cursor}").json()
        seqs += [event["seq"] for event in page["events"]]
        cursor, pages = page["next_after_seq"], pages + 1
        if not page["has_more"]:
            break
    everything = api.get(f"/api/v1/events?account={alice}&limit=1000").json()["events"]
    assert seqs == [event["seq"] for event in everything] and pages >= 3
    assert all(len(event["hash"]) == 64 for event in everything)
    types = [event["type"] for event in everything]
    assert types[:2] == ["account_opened", "mint"] and "release" in types


def test_concurrent_batches_all_land(api, book) -> None:
    alice, bob = book["alice"], book["bob"]
    start = available(api, bob)
    failures: list[str] = []

    def send(worker: int) -> None:
        with httpx.Client(base_url=api.base_url, headers=api.headers, timeout=30) as client:
            response = client.post("/api/v1/transfers", json={"transfers": [
                {"from": alice, "to": bob, "amount": 1, "idempotency_key": f"c{worker}-{i}"}
                for i in range(200)]})
            if response.status_code != 200 or any(
                    r["status"] != "ok" for r in response.json()["results"]):
                failures.append(response.text[:200])

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert available(api, bob) == start + 1_200


def test_refusals(server, api, book) -> None:
    alice = book["alice"]
    anonymous = server.client().get(f"/api/v1/balances?account={alice}")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "authentication_required"
    writer = server.client(server.api_key("payments-writer", "write"))
    assert writer.get("/api/v1/ledgers").json()["code"] == "scope_required"
    stranger = server.client(server.api_key("stranger", "read,write"))
    denied = stranger.get(f"/api/v1/balances?account={alice}")
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert stranger.get(f"/api/v1/accounts/{alice}").status_code == 403
    assert stranger.post("/api/v1/ledgers", json={"code": "USD", "scale": 2}).status_code == 403
    revoked_key = server.api_key("short-lived", "read")
    server.manage("apikey", "revoke", revoked_key.split("_")[1])
    # Revoked in another process before this server ever saw it: refused at once.
    revoked = server.client(revoked_key).get("/api/v1/ledgers")
    assert revoked.status_code == 401 and revoked.json()["code"] == "api_key_invalid"


def test_errors_are_json_and_never_500(api) -> None:
    cases = [
        api.post("/api/v1/transfers", content=b"{nope", headers={"content-type":
                                                                  "application/json"}),
        api.post("/api/v1/transfers", json={"ledger": "EUR", "transfers": [{}] * 8_001}),
        api.get("/api/v1/not-a-thing"),
        api.put("/api/v1/transfers", json={}),
        api.get("/api/v1/balances?account=acc_eur_x&as_of_seq=banana"),
        api.post("/api/v1/accounts", json={"ledger": "EUR", "did": "did:ex:\u00e9"}),
    ]
    assert [response.status_code for response in cases] == [400, 413, 404, 405, 422, 422]
    for response in cases:
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) <= {"code", "message", "details"}
        assert "Traceback" not in response.text
