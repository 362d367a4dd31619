"""The fast lane (`ledger.api.fastlane`) answers transfers and balance reads as Django would,
and leaves to Django every request it cannot answer from what the process remembers.

Driven as uvicorn drives the application, over real RocksDB shards and the embedded writer.
`reached` lists the requests that got to Django, so each test shows who answered.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest
from django.utils import timezone
from guardian.utils import get_user_obj_perms_model

from apiaccess.keys import (
    api_client_get_or_create,
    api_key_cache_clear,
    api_key_issue,
    api_key_revoke,
)
from apiaccess.models import ApiClient, ApiKey
from config.asgi_http import SyncChainASGIHandler
from ledger import services
from ledger.api.fastlane import FastLane
from ledger.permissions import grant_cache_clear
from tests.support.asgi import exchange

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
# Vary with every response (or with the JSON's whitespace, which differs between the two).
UNCOMPARED_HEADERS = {b"content-length", b"date", b"server"}


class Recording:
    """Django's handler, noting the path of each request that reaches it."""

    def __init__(self) -> None:
        self.django = SyncChainASGIHandler()
        self.reached: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.reached.append(scope["path"])
        await self.django(scope, receive, send)


@pytest.fixture
def django_app(ledger_runtime) -> Recording:
    api_key_cache_clear()
    grant_cache_clear()
    yield Recording()
    api_key_cache_clear()
    grant_cache_clear()


@pytest.fixture
def lane(django_app) -> FastLane:
    return FastLane(django_app)


def call(app, method: str, path: str, *, key: str | None = None, query: dict | None = None,
         body: bytes = b"", chunks: int = 1, host: bytes = b"testserver"):
    """(status, headers, body) of one request; the body arrives in `chunks` messages."""
    headers = [(b"host", host), (b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    return asyncio.run(exchange(app, method, path, query=urlencode(query or {}).encode(),
                                body=body, headers=headers, chunks=chunks))


def compared(response) -> tuple[int, list, object]:
    status, headers, body = response
    kept = sorted((name.lower(), value) for name, value in headers
                  if name.lower() not in UNCOMPARED_HEADERS)
    return status, kept, orjson.loads(body)


def batch(*items: dict) -> bytes:
    return orjson.dumps({"transfers": list(items)})


@pytest.fixture
def ledger(django_app):
    """EUR with alice (funded) and bob, opened through Django by `key` (read, write)."""
    services.ledger_create(code="EUR", scale=2)
    client = api_client_get_or_create(name="integrator")
    _, key = api_key_issue(client=client, scopes=["read", "write"])
    ids = {}
    for name in ("alice", "bob"):
        status, _, body = call(django_app, "POST", "/api/v1/accounts", key=key,
                               body=orjson.dumps({"ledger": "EUR", "did": f"did:x:{name}"}))
        assert status == 201, body
        ids[name] = orjson.loads(body)["id"]
    status, _, body = call(django_app, "POST", "/api/v1/transfers", key=key, body=batch(
        {"type": "mint", "account": ids["alice"], "amount": 1_000, "idempotency_key": "m1"}))
    assert status == 200 and orjson.loads(body)["results"][0]["status"] == "ok", body
    # A balance read through Django: the key and the client's grants are remembered now.
    assert call(django_app, "GET", "/api/v1/balances", key=key,
                query={"account": ids["alice"]})[0] == 200
    django_app.reached.clear()
    return key, ids


def test_balance_reads_are_answered_by_the_lane_as_by_django(lane, django_app, ledger):
    key, ids = ledger
    for query in ({"account": ids["alice"]}, {"ledger": "EUR", "did": "did:x:bob"}):
        by_lane = call(lane, "GET", "/api/v1/balances", key=key, query=query)
        assert django_app.reached == []
        by_django = call(django_app, "GET", "/api/v1/balances", key=key, query=query)
        assert compared(by_lane) == compared(by_django)
        django_app.reached.clear()
    status, _, body = by_lane
    assert status == 200 and orjson.loads(body)["balances"]["available"] == 0  # bob's


def test_transfers_are_answered_by_the_lane_as_by_django(lane, django_app, ledger):
    key, ids = ledger
    body = batch(
        {"from": ids["alice"], "to": ids["bob"], "amount": 300, "idempotency_key": "t1"},
        {"from": ids["bob"], "to": ids["alice"], "amount": 10**6, "idempotency_key": "t2"},
        {"from": ids["alice"], "to": ids["bob"], "amount": 0, "idempotency_key": "t3"},
    )
    # Fresh through the lane, then replayed through Django: the same answer, but "replayed".
    fresh = compared(call(lane, "POST", "/api/v1/transfers", key=key, body=body))
    assert django_app.reached == []
    results = fresh[2]["results"]
    assert [r["code"] for r in results] == ["ok", "insufficient_funds", "amount_must_be_positive"]
    assert not any(r["replayed"] for r in results)
    replayed = compared(call(django_app, "POST", "/api/v1/transfers", key=key, body=body))
    for result in replayed[2]["results"]:
        result["replayed"] = False
    assert replayed == fresh
    # Replays both ways: identical, event bytes included.
    django_app.reached.clear()
    again = call(lane, "POST", "/api/v1/transfers", key=key, body=body)
    assert django_app.reached == []
    assert compared(again) == compared(call(django_app, "POST", "/api/v1/transfers", key=key,
                                            body=body))
    assert again[2] == call(django_app, "POST", "/api/v1/transfers", key=key, body=body)[2]
    balance = call(lane, "GET", "/api/v1/balances", key=key, query={"account": ids["bob"]})
    assert orjson.loads(balance[2])["balances"]["available"] == 300


def test_a_large_batch_is_answered_by_the_lane(lane, django_app, ledger):
    key, ids = ledger
    items = [{"from": ids["alice"], "to": ids["bob"], "amount": 1, "idempotency_key": f"l{i}"}
             for i in range(200)]
    body = batch(*items)
    assert len(body) > 8 * 1024  # parsed in the executor, not on the loop
    status, _, data = call(lane, "POST", "/api/v1/transfers", key=key, body=body, chunks=3)
    assert status == 200 and django_app.reached == []
    assert [r["status"] for r in orjson.loads(data)["results"]] == ["ok"] * 200


def test_a_stopped_writer_gets_the_same_503_both_ways(lane, django_app, ledger,
                                                      ledger_runtime):
    key, ids = ledger
    ledger_runtime.shards.get("EUR").writer.stop()
    body = batch({"from": ids["alice"], "to": ids["bob"], "amount": 1, "idempotency_key": "s"})
    by_lane = call(lane, "POST", "/api/v1/transfers", key=key, body=body)
    assert django_app.reached == []
    assert compared(by_lane) == compared(call(django_app, "POST", "/api/v1/transfers", key=key,
                                              body=body))
    assert by_lane[0] == 503 and orjson.loads(by_lane[2])["code"] == "ledger_unavailable"


def _left_to_django(lane, django_app, method, path, *, status, **request):
    django_app.reached.clear()
    response = call(lane, method, path, **request)
    assert django_app.reached == [path]
    assert response[0] == status, response[2]
    return response


def test_requests_the_lane_cannot_answer_from_memory_go_to_django(lane, django_app, ledger,
                                                                   settings):
    key, ids = ledger
    alice = {"account": ids["alice"]}
    ok = batch({"from": ids["alice"], "to": ids["bob"], "amount": 1, "idempotency_key": "d1"})
    balances, transfers = "/api/v1/balances", "/api/v1/transfers"
    _left_to_django(lane, django_app, "GET", balances, status=401, query=alice)
    _left_to_django(lane, django_app, "GET", balances, status=401, key="lfs_0123456789ab_x",
                    query=alice)
    _left_to_django(lane, django_app, "GET", balances, status=404, key=key,
                    query={**alice, "as_of_seq": 0})  # not open yet at seq 0
    _left_to_django(lane, django_app, "GET", balances, status=422, key=key, query={"did": "x"})
    _left_to_django(lane, django_app, "GET", balances, status=403, key=key,
                    query={"ledger": "USD", "did": "did:x:alice"})  # no such ledger
    _left_to_django(lane, django_app, "GET", balances, status=400, key=key, query=alice,
                    host=b"evil.example")
    _left_to_django(lane, django_app, "POST", transfers, status=400, key=key, body=b"{nope")
    _left_to_django(lane, django_app, "POST", transfers, status=422, key=key,
                    body=b'{"transfers": 1}')
    opened = _left_to_django(
        lane, django_app, "POST", transfers, status=200, key=key,
        body=orjson.dumps({"ledger": "EUR", "transfers": [
            {"type": "open_account", "did": "did:x:carol", "idempotency_key": "o1"}]}))
    carol = orjson.loads(opened[2])["results"][0]["event"]["details"]["account"]
    # ... and its grant is remembered: the lane answers for carol from now on.
    django_app.reached.clear()
    assert call(lane, "GET", balances, key=key, query={"account": carol})[0] == 200
    assert django_app.reached == []

    limit, settings.DATA_UPLOAD_MAX_MEMORY_SIZE = settings.DATA_UPLOAD_MAX_MEMORY_SIZE, 64
    _left_to_django(lane, django_app, "POST", transfers, status=413, key=key, body=ok, chunks=4)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = limit

    # A key without the scope, and a client that may not see the account.
    reader = api_client_get_or_create(name="reader")
    _, read_only = api_key_issue(client=reader, scopes=["read"])
    _left_to_django(lane, django_app, "POST", transfers, status=403, key=read_only, body=ok)
    _left_to_django(lane, django_app, "GET", balances, status=403, key=read_only, query=alice)
    _left_to_django(lane, django_app, "GET", balances, status=403, key=read_only, query=alice)

    # A revoked key is forgotten at once: Django refuses it.
    stored = reader.keys.get()
    api_key_revoke(key=stored)
    _left_to_django(lane, django_app, "POST", transfers, status=401, key=read_only, body=ok)


def test_a_key_the_lane_does_not_remember_yet_goes_to_django_once(lane, django_app, ledger):
    key, ids = ledger
    api_key_cache_clear()
    grant_cache_clear()
    query = {"account": ids["alice"]}
    _left_to_django(lane, django_app, "GET", "/api/v1/balances", status=200, key=key,
                    query=query)
    django_app.reached.clear()
    assert call(lane, "GET", "/api/v1/balances", key=key, query=query)[0] == 200
    assert django_app.reached == []


def _reads(lane, key: str, account: str, pauses: list[float]) -> list[int]:
    """Balance reads through the lane, one before each pause and one after the last, on one
    event loop (as a web process serves them: what the lane starts in the background keeps
    running); the statuses."""
    headers = [(b"host", b"testserver"), (b"authorization", f"Bearer {key}".encode())]
    query = urlencode({"account": account}).encode()

    async def reads() -> list[int]:
        statuses = []
        for pause in [*pauses, None]:
            response = await exchange(lane, "GET", "/api/v1/balances", query=query,
                                      headers=headers)
            statuses.append(response[0])
            if pause is not None:
                await asyncio.sleep(pause)
        return statuses

    return asyncio.run(reads())


def _remembered_after_django(lane, django_app, ledger) -> tuple[str, dict]:
    """(key, ids) of `ledger`, after everything remembered was forgotten and one read went
    through Django (after which the lane answers it)."""
    key, ids = ledger
    api_key_cache_clear()
    grant_cache_clear()
    _left_to_django(lane, django_app, "GET", "/api/v1/balances", status=200, key=key,
                    query={"account": ids["alice"]})
    django_app.reached.clear()
    return key, ids


@pytest.fixture
def short_memory(monkeypatch):
    """Keys and grants remembered for 1.5 s, renewed in their last second."""
    monkeypatch.setattr("apiaccess.keys.AUTH_CACHE_SECONDS", 1.5)
    monkeypatch.setattr("ledger.permissions.GRANT_CACHE_SECONDS", 1.5)


def test_a_key_and_grants_in_use_are_renewed_before_they_expire(lane, django_app, ledger,
                                                                 short_memory):
    """Without the renewal, the first read after 1.5 s would go to Django (and every 1.5 s
    after that)."""
    key, ids = _remembered_after_django(lane, django_app, ledger)
    assert _reads(lane, key, ids["alice"], [0.1] * 39) == [200] * 40
    assert django_app.reached == []


def test_a_key_and_grants_used_lately_are_renewed_while_no_request_comes(
        lane, django_app, ledger, short_memory):
    """A worker that got none of a client's requests for a while still answers the next one
    from memory: what was used within `KEEP_WARM_SECONDS` is renewed without requests."""
    key, ids = _remembered_after_django(lane, django_app, ledger)
    # A pause of more than twice the entries' 1.5 s.
    assert _reads(lane, key, ids["alice"], [3.5]) == [200, 200]
    assert django_app.reached == []


def test_a_renewal_finds_a_key_revoked_elsewhere_and_a_grant_taken_away(
        lane, django_app, ledger, short_memory):
    """The renewal asks the database again: what was revoked by another process is no longer
    answered from memory once its entry was renewed."""
    key, ids = ledger
    api_key_cache_clear()
    grant_cache_clear()
    call(django_app, "GET", "/api/v1/balances", key=key, query={"account": ids["alice"]})
    client = ApiClient.objects.get(name="integrator")
    get_user_obj_perms_model().objects.filter(user=client.user, object_pk=ids["alice"]).delete()
    django_app.reached.clear()
    statuses = _reads(lane, key, ids["alice"], [0.1] * 19)
    assert statuses[:3] == [200] * 3  # still remembered
    assert statuses[-3:] == [403] * 3 and django_app.reached  # renewed without the grant
    ApiKey.objects.filter(client=client).update(revoked_at=timezone.now())
    django_app.reached.clear()
    statuses = _reads(lane, key, ids["bob"], [0.1] * 19)
    assert statuses[-3:] == [401] * 3 and django_app.reached


def test_an_unexpected_failure_in_the_lane_is_an_error_shape_not_a_trace(
        lane, django_app, ledger, monkeypatch):
    key, ids = ledger

    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr("ledger.api.fastlane.balance_now", broken)
    status, _, body = call(lane, "GET", "/api/v1/balances", key=key,
                           query={"account": ids["alice"]})
    assert status == 500 and django_app.reached == []
    assert orjson.loads(body) == {"code": "internal_error",
                                  "message": "internal error; it has been logged"}


@pytest.mark.parametrize(("setting", "in_front"), [("1", True), ("0", False)])
def test_the_served_application_puts_the_lane_in_front_unless_turned_off(setting, in_front):
    probe = ("import config.asgi as a; from ledger.api.fastlane import FastLane; "
             f"assert isinstance(a.http_application, FastLane) is {in_front}; "
             "assert a.application.application_mapping['http'] is a.http_application")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "LEDGERFS_FAST_LANE": setting})
    assert done.returncode == 0, done.stderr[-2000:]
