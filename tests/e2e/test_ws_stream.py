"""`/ws/events/` on a running server, with a real WebSocket client.

Events arrive in seq order; a client that disconnects and resumes with `after_seq` gets exactly
what it missed, then the live events, with no duplicate; a client never receives events of
accounts it may not view; filters and refusals behave as documented (docs/streaming.md).
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support.servers import LiveServer

LEDGER = "EUR"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("ws-stream")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alice(server):
    """An integrator with two funded accounts (granted to it, as it opened them)."""
    key = server.api_key("alice")
    api = server.api(key)
    api.ledger(LEDGER)
    accounts = api.open_accounts(LEDGER, ["did:alice:1", "did:alice:2"])
    api.commands(LEDGER, [{"type": "mint", "account": accounts[0], "amount": 1_000_000,
                           "idempotency_key": "fund-alice"}])
    yield key, api, accounts
    api.close()


def transfers(api, accounts: list[str], keys: list[str]) -> list[int]:
    """One transfer per key between the two accounts; returns their seqs."""
    results = api.commands(LEDGER, [{"from": accounts[0], "to": accounts[1], "amount": 1,
                                     "idempotency_key": key} for key in keys])
    return [r["event"]["seq"] for r in results]


def connect(server, query: str, key: str | None = None, **options):
    headers = {"Authorization": f"Bearer {key}"} if key else None
    return websockets.connect(f"{server.ws_url}/ws/events/?{query}", additional_headers=headers,
                              open_timeout=10, **options)


async def receive_events(ws, count: int, timeout: float = 10.0) -> list[dict]:
    """The next `count` events (from any number of frames); fails on an error frame."""
    events: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(events) < count:
            frame = json.loads(await ws.recv())
            assert frame["type"] != "error", frame
            if frame["type"] == "events":
                events += frame["events"]
    return events


async def until_ready(ws, timeout: float = 10.0) -> list[dict]:
    """The backlog, up to the `ready` frame."""
    events: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "ready":
                return events
            assert frame["type"] == "events", frame
            events += frame["events"]


async def silence(ws, seconds: float) -> list[dict]:
    """Whatever arrives within `seconds` (expected: nothing)."""
    frames = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                frames.append(json.loads(await ws.recv()))
    except TimeoutError:
        return frames


def test_events_arrive_in_order_and_a_resumed_client_gets_exactly_what_it_missed(
        server, alice):
    key, api, accounts = alice

    async def scenario():
        async with connect(server, f"ledger={LEDGER}", key) as ws:
            assert await until_ready(ws) == []
            live = []
            for batch in range(3):
                live += transfers(api, accounts, [f"live-{batch}-{i}" for i in range(10)])
            got = await receive_events(ws, len(live))
            assert [e["seq"] for e in got] == live
            assert all(e["type"] == "transfer" and len(e["hash"]) == 64 for e in got)
            last_seen = got[-1]["seq"]
        missed = []
        for batch in range(2):  # committed while the client is away
            missed += transfers(api, accounts, [f"missed-{batch}-{i}" for i in range(10)])
        async with connect(server, f"ledger={LEDGER}&after_seq={last_seen}", key) as ws:
            backlog = await until_ready(ws)
            assert [e["seq"] for e in backlog] == missed
            after = transfers(api, accounts, [f"after-{i}" for i in range(5)])
            got = await receive_events(ws, len(after))
            assert [e["seq"] for e in got] == after
            assert await silence(ws, 0.5) == []  # nothing twice

    asyncio.run(scenario())


def test_a_client_never_receives_events_of_accounts_it_may_not_view(server, alice):
    _, alice_api, alice_accounts = alice
    bob_key = server.api_key("bob")
    bob_api = server.api(bob_key)
    bob_accounts = bob_api.open_accounts(LEDGER, ["did:bob:1", "did:bob:2"])
    bob_api.commands(LEDGER, [{"type": "mint", "account": bob_accounts[0], "amount": 100,
                               "idempotency_key": "fund-bob"}])

    async def scenario():
        # The key in the query string, as a browser would send it; the whole log from seq 0.
        async with websockets.connect(
                f"{server.ws_url}/ws/events/?ledger={LEDGER}&after_seq=-1&api_key={bob_key}",
                open_timeout=10) as ws:
            backlog = await until_ready(ws)
            assert {e["type"] for e in backlog} == {"account_opened", "mint"}
            transfers(alice_api, alice_accounts, [f"private-{i}" for i in range(10)])
            [mine] = transfers(bob_api, bob_accounts, ["bob-1"])
            got = await receive_events(ws, 1)
            assert [e["seq"] for e in got] == [mine]  # Alice's ten came before, unseen
            seen = backlog + got
        visible = set(bob_accounts)
        assert all(visible & {leg["account"] for leg in e["legs"]} or
                   e["details"].get("account") in visible for e in seen)
        async with connect(server, f"account={alice_accounts[0]}", bob_key) as ws:
            refusal = json.loads(await ws.recv())
            assert refusal["code"] == "permission_denied"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4403

    asyncio.run(scenario())
    bob_api.close()


def test_filters_by_account_and_type(server, alice):
    key, api, accounts = alice

    async def scenario():
        query = f"account={accounts[1]}&type=transfer,mint&after_seq=-1"
        async with connect(server, query, key) as ws:
            backlog = await until_ready(ws)
            assert backlog and all(e["type"] == "transfer" for e in backlog)
            assert all(e["legs"][1]["account"] == accounts[1] for e in backlog)
            assert [e["seq"] for e in backlog] == sorted({e["seq"] for e in backlog})
            api.commands(LEDGER, [{"type": "mint", "account": accounts[0], "amount": 5,
                                   "idempotency_key": "filtered-out"}])
            [seq] = transfers(api, accounts, ["filtered-in"])
            assert [e["seq"] for e in await receive_events(ws, 1)] == [seq]

    asyncio.run(scenario())


def test_refused_handshakes(server, alice):
    key, _, _ = alice

    async def scenario():
        with pytest.raises(InvalidStatus) as anonymous:
            async with connect(server, f"ledger={LEDGER}"):
                pass
        assert anonymous.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as bad_key:
            async with connect(server, f"ledger={LEDGER}", "lfs_000000000000_nope"):
                pass
        assert bad_key.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as foreign:
            async with connect(server, f"ledger={LEDGER}", key,
                               origin="https://evil.example"):
                pass
        assert foreign.value.response.status_code == 403
        for query, code in (("after_seq=3", "ledger_required"), ("type=teleport", "type_invalid"),
                            ("ledger=XYZ", "ledger_not_found")):
            async with connect(server, query, key) as ws:
                assert json.loads(await ws.recv())["code"] == code

    asyncio.run(scenario())
