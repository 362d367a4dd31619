"""The ledger API (/api/v1/) through Django's test client, with real RocksDB shards.

The projector is manual in tests and never runs here, so every read below that sees a write
proves the API reads the event store, not the read model.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
import pytest
from django.contrib.auth.models import Group
from django.test import Client

from apiaccess.keys import api_client_get_or_create, api_key_cache_clear, api_key_issue
from ledger.core import canonical
from ledger.core.chain import LEAF_PREFIX
from ledger.permissions import AUDITORS_GROUP, grant_cache_clear

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(ledger_runtime):
    api_key_cache_clear()
    grant_cache_clear()
    yield
    api_key_cache_clear()
    grant_cache_clear()


def _client(name: str, scopes: str, *, auditor: bool = False) -> Client:
    client = api_client_get_or_create(name=name)
    if auditor:
        client.user.groups.add(Group.objects.get(name=AUDITORS_GROUP))
    _, raw_key = api_key_issue(client=client, scopes=scopes)
    return Client(headers={"authorization": f"Bearer {raw_key}"})


@pytest.fixture
def api() -> Client:
    return _client("integrator", "read,write,admin")


def post(client: Client, path: str, payload) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    response = client.post(f"/api/v1{path}", body, content_type="application/json")
    return response.status_code, response.json()


def get(client: Client, path: str) -> tuple[int, dict]:
    response = client.get(f"/api/v1{path}")
    return response.status_code, response.json()


def open_account(client: Client, did: str, **fields) -> dict:
    status, account = post(client, "/accounts", {"ledger": "EUR", "did": did, **fields})
    assert status in (200, 201), account
    return account


def run(client: Client, *items, atomic: bool = False) -> list[dict]:
    status, body = post(client, "/transfers", {"atomic": atomic, "transfers": list(items)})
    assert status == 200, body
    return body["results"]


@pytest.fixture
def book(api):
    """EUR with alice (100.00 minted) and bob."""
    assert post(api, "/ledgers", {"code": "EUR", "scale": 2})[0] == 201
    alice = open_account(api, "did:example:alice")["id"]
    bob = open_account(api, "did:example:bob")["id"]
    [minted] = run(api, {"type": "mint", "account": alice, "amount": 10_000,
                         "idempotency_key": "mint-1"})
    assert minted["status"] == "ok"
    return alice, bob


def balances(client: Client, account: str, query: str = "") -> dict:
    status, body = get(client, f"/balances?account={account}{query}")
    assert status == 200, body
    return body


# -- ledgers -------------------------------------------------------------------------------------

def test_ledgers_are_created_once_per_code(api) -> None:
    assert post(api, "/ledgers", {"code": "EUR", "scale": 2})[0] == 201
    assert post(api, "/ledgers", {"code": "EUR", "scale": 2})[0] == 200
    status, error = post(api, "/ledgers", {"code": "EUR", "scale": 3})
    assert (status, error["code"]) == (409, "ledger_exists_with_different_scale")
    status, error = post(api, "/ledgers", {"code": "eur", "scale": 2})
    assert (status, error["code"]) == (422, "ledger_invalid")
    status, ledger = get(api, "/ledgers/EUR")
    assert status == 200 and ledger["head_seq"] == 1 and len(ledger["head_hash"]) == 64
    assert [entry["code"] for entry in get(api, "/ledgers")[1]] == ["EUR"]
    assert get(api, "/ledgers/USD")[1]["code"] == "ledger_not_found"


def test_creating_a_ledger_needs_the_admin_scope() -> None:
    status, error = post(_client("writer", "read,write"), "/ledgers", {"code": "EUR", "scale": 2})
    assert (status, error["code"]) == (403, "scope_required")


# -- accounts ------------------------------------------------------------------------------------

def test_accounts_are_created_on_first_use_by_did(api, book) -> None:
    account = open_account(api, "did:example:carol", kind="clearing", tags=["eur-usd"])
    assert account["status"] == "open" and account["kind"] == "clearing"
    assert account["tags"] == ["eur-usd"] and account["safeguarding"] == "customer_funds"
    assert account["balances"] == {"available": 0, "held": 0, "bonded": 0, "fee": 0,
                                   "promo": 0}
    status, again = post(api, "/accounts", {"ledger": "EUR", "did": "did:example:carol"})
    assert status == 200 and again["id"] == account["id"]
    status, existing = post(api, "/accounts", {"ledger": "EUR", "did": "did:example:alice",
                                               "tags": ["other"]})
    assert status == 200 and existing["balances"]["available"] == 10_000
    status, fetched = get(api, f"/accounts/{account['id']}")
    assert status == 200 and fetched == {**account, "seq": fetched["seq"]}


@pytest.mark.parametrize(("fields", "status", "code"), [
    ({"ledger": "EUR", "did": "did:x", "kind": "system"}, 422, "account_kind_invalid"),
    ({"ledger": "EUR", "did": "has space"}, 422, "did_invalid"),
    ({"ledger": "EUR", "did": "did:x", "tags": ["no spaces"]}, 422, "tags_invalid"),
    ({"ledger": "USD", "did": "did:x"}, 404, "ledger_not_found"),
    ({"ledger": "EUR"}, 422, "request_invalid"),
])
def test_invalid_accounts_are_refused(api, book, fields, status, code) -> None:
    got_status, error = post(api, "/accounts", fields)
    assert (got_status, error["code"]) == (status, code)
    assert set(error) <= {"code", "message", "details"}


def test_unknown_accounts_are_404_for_who_may_see_all_else_403(api, book) -> None:
    missing = "/accounts/acc_eur_00000000000000000000"
    auditor = _client("auditor", "read", auditor=True)
    assert get(auditor, missing)[0] == 404
    assert get(auditor, missing)[1]["code"] == "account_not_found"
    # Without permission to see everything, existence is not revealed.
    assert get(api, missing)[1]["code"] == "permission_denied"


# -- transfers -----------------------------------------------------------------------------------

def _verify_chain_hash(event: dict) -> None:
    body = {key: value for key, value in event.items() if key != "hash"}
    leaf = hashlib.sha256(LEAF_PREFIX + canonical.encode(body)).digest()
    assert hashlib.sha256(bytes.fromhex(event["prev_hash"]) + leaf).hexdigest() == event["hash"]


def test_a_batch_answers_one_result_per_item_in_order(api, book) -> None:
    alice, bob = book
    results = run(
        api,
        {"from": alice, "to": bob, "amount": 2_500, "idempotency_key": "t1",
         "metadata": {"order": "1001"}},
        {"from": alice, "to": bob, "amount": 0, "idempotency_key": "t2"},
        {"from": bob, "to": alice, "amount": 10**9, "idempotency_key": "t3"},
        {"type": "promo_mint", "account": bob, "amount": 5, "idempotency_key": "t4"},
    )
    assert [(r["index"], r["status"], r["code"]) for r in results] == [
        (0, "ok", "ok"), (1, "rejected", "amount_must_be_positive"),
        (2, "rejected", "insufficient_funds"), (3, "ok", "ok"),
    ]
    event = results[0]["event"]
    assert event["type"] == "transfer" and event["metadata"] == {"order": "1001"}
    assert event["legs"] == [{"account": alice, "bucket": "available", "amount": -2_500},
                             {"account": bob, "bucket": "available", "amount": 2_500}]
    _verify_chain_hash(event)
    assert results[1]["event"] is None
    assert balances(api, bob)["balances"] == {"available": 2_500, "held": 0, "bonded": 0,
                                              "fee": 0, "promo": 5}


def test_a_replay_returns_the_first_event_and_changes_nothing(api, book) -> None:
    alice, bob = book
    item = {"from": alice, "to": bob, "amount": 100, "idempotency_key": "pay-1"}
    [first] = run(api, item)
    [again] = run(api, item)
    assert again["replayed"] is True and first["replayed"] is False
    assert again["event"] == first["event"]
    assert balances(api, alice)["balances"]["available"] == 9_900
    [conflict] = run(api, {**item, "amount": 101})
    assert conflict["code"] == "idempotency_key_reused_with_different_request"
    # Keys are scoped per API client: another client's "pay-1" is a new command.
    [other] = run(_client("other", "write"), item)
    assert (other["code"], other["replayed"]) == ("ok", False)


def test_an_atomic_batch_applies_all_or_nothing(api, book) -> None:
    alice, bob = book
    results = run(
        api,
        {"from": alice, "to": bob, "amount": 100, "idempotency_key": "a1"},
        {"from": bob, "to": alice, "amount": 10**6, "idempotency_key": "a2"},
        {"from": alice, "to": bob, "amount": 100, "idempotency_key": "a3"},
        atomic=True,
    )
    assert [r["code"] for r in results] == [
        "linked_command_failed", "insufficient_funds", "linked_command_failed"]
    assert all(r["event"] is None for r in results)
    assert balances(api, alice)["balances"]["available"] == 10_000
    results = run(api, {"from": alice, "to": bob, "amount": 100, "idempotency_key": "a1"},
                  {"from": bob, "to": alice, "amount": 40, "idempotency_key": "a4"},
                  atomic=True)
    assert [r["code"] for r in results] == ["ok", "ok"]
    assert balances(api, alice)["balances"]["available"] == 9_940


def test_accounts_can_be_opened_in_a_batch_and_read_back(api, book) -> None:
    [opened] = run(api, {"type": "open_account", "did": "did:example:dave",
                         "idempotency_key": "open-dave", "ledger": "ignored"},
                   {"type": "freeze_account", "account": book[1], "idempotency_key": "f"})[:1]
    account = opened["event"]["details"]["account"]
    assert get(api, f"/accounts/{account}")[1]["did"] == "did:example:dave"
    assert balances(api, book[1])["status"] == "frozen"


@pytest.mark.parametrize(("body", "status", "code"), [
    (b'{"transfers": [', 400, "request_malformed"),
    (b'{"transfers": "all"}', 422, "request_invalid"),
    (b'{"transfers": [{"amount": 1}]}', 422, "ledger_required"),
    (b'{"transfers": [{"from": "acc_usd_1"}]}', 404, "ledger_not_found"),
])
def test_unusable_batches_are_http_errors(api, book, body, status, code) -> None:
    got_status, error = post(api, "/transfers", body)
    assert (got_status, error["code"]) == (status, code)


def test_a_batch_over_8000_commands_is_413(api, book) -> None:
    status, error = post(api, "/transfers", {"ledger": "EUR", "transfers": [{}] * 8_001})
    assert (status, error["code"]) == (413, "batch_too_large")


def test_a_stopped_writer_is_503_and_retryable(api, book, ledger_runtime) -> None:
    alice, bob = book
    ledger_runtime.shards.get("EUR").writer.stop()
    response = api.post("/api/v1/transfers", orjson.dumps({"transfers": [
        {"from": alice, "to": bob, "amount": 1, "idempotency_key": "late"}]}),
        content_type="application/json")
    assert response.status_code == 503 and response.json()["code"] == "ledger_unavailable"
    assert response["Retry-After"] == "1"


# -- balances ------------------------------------------------------------------------------------

def test_balances_as_of_a_seq_or_a_time(api, book) -> None:
    alice, bob = book
    before = balances(api, alice)
    [paid] = run(api, {"from": alice, "to": bob, "amount": 700, "idempotency_key": "p"})
    now = balances(api, alice)
    assert now["seq"] == paid["event"]["seq"] and now["balances"]["available"] == 9_300
    assert balances(api, alice, f"&as_of_seq={before['seq']}") == before
    assert balances(api, alice, "&as_of_seq=999999")["seq"] == now["seq"]
    status, error = get(api, f"/balances?account={alice}&as_of=2000-01-01T00:00:00Z")
    assert (status, error["code"]) == (404, "account_not_found")
    seconds, nanos = divmod(paid["event"]["ts"] - 1_000, 10**9)
    moment = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    just_before = f"{moment}.{nanos // 1_000:06d}Z"
    assert balances(api, alice, f"&as_of={just_before}")["balances"] == before["balances"]
    by_did = get(api, "/balances?ledger=EUR&did=did:example:alice")[1]
    assert by_did["account"] == alice and by_did["balances"] == now["balances"]


@pytest.mark.parametrize(("query", "code"), [
    ("", "account_required"),
    ("?ledger=EUR", "account_required"),
    ("?account=x&as_of_seq=1&as_of=2020-01-01T00:00:00Z", "request_invalid"),
    ("?account=x&as_of_seq=-1", "request_invalid"),
    ("?account=x&as_of=yesterday", "request_invalid"),
])
def test_malformed_balance_queries_are_422(api, book, query, code) -> None:
    status, error = get(api, f"/balances{query}")
    assert (status, error["code"]) == (422, code)


# -- holds ---------------------------------------------------------------------------------------

def test_a_hold_is_placed_partly_captured_and_then_resolved(api, book) -> None:
    alice, bob = book
    status, placed = post(api, "/holds", {"account": alice, "amount": 3_000, "beneficiary": bob,
                                          "idempotency_key": "h1"})
    assert status == 201 and placed["hold"]["status"] == "open"
    hold_id = placed["hold"]["id"]
    assert balances(api, alice)["balances"]["held"] == 3_000
    status, released = post(api, f"/holds/{hold_id}/release",
                            {"amount": 1_800, "idempotency_key": "r1"})
    assert status == 200
    assert released["hold"] == {"id": hold_id, "account": alice, "amount": 3_000,
                                "status": "released", "beneficiary": bob, "captured": 1_800}
    assert balances(api, alice)["balances"]["available"] == 8_200
    assert balances(api, bob)["balances"]["available"] == 1_800
    status, replay = post(api, f"/holds/{hold_id}/release",
                          {"amount": 1_800, "idempotency_key": "r1"})
    assert status == 200 and replay["replayed"] is True and replay["event"] == released["event"]
    status, error = post(api, f"/holds/{hold_id}/cancel", {"idempotency_key": "c1"})
    assert (status, error["code"]) == (409, "hold_already_resolved")


def test_hold_errors(api, book) -> None:
    alice, _ = book
    status, error = post(api, "/holds/hld_eur_missing/cancel", {"idempotency_key": "c"})
    assert (status, error["code"]) == (404, "hold_not_found")
    status, error = post(api, "/holds/nameless/cancel", {"idempotency_key": "c"})
    assert (status, error["code"]) == (422, "ledger_required")
    status, error = post(api, "/holds", {"account": alice, "amount": 10**7,
                                         "idempotency_key": "big"})
    assert (status, error["code"]) == (409, "insufficient_funds")
    status, placed = post(api, "/holds", {"account": alice, "amount": 10, "hold_id": "hld_eur_7",
                                          "expires_at": "2200-01-01T00:00:00Z",
                                          "idempotency_key": "h"})
    assert status == 201 and placed["hold"]["expires_at"] == 7_258_118_400 * 10**9
    status, cancelled = post(api, "/holds/hld_eur_7/cancel", {"idempotency_key": "c7"})
    assert status == 200 and cancelled["hold"]["status"] == "cancelled"


# -- events --------------------------------------------------------------------------------------

def test_events_page_with_a_cursor_and_filter(api, book) -> None:
    alice, bob = book
    run(api, *({"from": alice, "to": bob, "amount": 1, "idempotency_key": f"e{i}"}
               for i in range(5)))
    seen, cursor = [], -1
    while True:
        status, page = get(api, f"/events?account={alice}&limit=2&after_seq={cursor}")
        assert status == 200 and len(page["events"]) <= 2
        seen += [event["seq"] for event in page["events"]]
        cursor = page["next_after_seq"]
        if not page["has_more"]:
            break
    assert seen == sorted(seen) and len(seen) == 7  # opened, minted, five transfers
    # Reading across accounts needs the permission to view them all.
    assert get(api, "/events?ledger=EUR")[1]["code"] == "permission_denied"
    auditor = _client("auditor", "read", auditor=True)
    mints = get(auditor, "/events?ledger=EUR&type=mint")[1]["events"]
    assert [event["type"] for event in mints] == ["mint"]
    _verify_chain_hash(mints[0])
    ts = mints[0]["ts"]
    status, page = get(auditor, "/events?ledger=EUR&until=2000-01-01T00:00:00Z")
    assert status == 200 and page["events"] == [] and ts > 0
    status, page = get(auditor, "/events?ledger=EUR&since=2000-01-01T00:00:00Z&limit=1000")
    assert [event["seq"] for event in page["events"]] == list(range(len(page["events"])))
    status, one = get(api, f"/events/{mints[0]['id']}")
    assert status == 200 and one == mints[0]
    assert get(auditor, "/events/evt_eur_0000")[1]["code"] == "event_not_found"
    assert get(api, "/events")[1]["code"] == "ledger_required"


# -- authentication, scopes and the error shape ---------------------------------------------------

def test_requests_without_a_valid_key_are_401(api, book) -> None:
    response = Client().get("/api/v1/ledgers")
    assert response.status_code == 401 and response.json()["code"] == "authentication_required"
    assert response["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer nonsense", "Bearer lfs_0123456789ab_wrong", "Basic dXNlcjpwYXNz"):
        response = Client(headers={"authorization": header}).get("/api/v1/ledgers")
        assert response.status_code == 401


def test_each_operation_needs_its_scope(book) -> None:
    alice, bob = book
    reader, writer = _client("reader", "read"), _client("writer", "write")
    status, error = post(reader, "/transfers", {"transfers": [
        {"from": alice, "to": bob, "amount": 1, "idempotency_key": "x"}]})
    assert (status, error["code"]) == (403, "scope_required")
    assert get(writer, "/ledgers")[1]["code"] == "scope_required"


def test_a_revoked_key_stops_working_at_once() -> None:
    from apiaccess.keys import api_key_revoke
    client = api_client_get_or_create(name="soon-gone")
    key, raw_key = api_key_issue(client=client, scopes="read")
    http = Client(headers={"authorization": f"Bearer {raw_key}"})
    assert http.get("/api/v1/ledgers").status_code == 200
    api_key_revoke(key=key)
    response = http.get("/api/v1/ledgers")
    assert response.status_code == 401 and response.json()["code"] == "api_key_invalid"


def test_every_api_error_is_the_json_shape(api, book, monkeypatch) -> None:
    unknown = api.get("/api/v1/no/such/thing")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    wrong_method = api.delete("/api/v1/ledgers")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"
    monkeypatch.setattr("ledger.api.accounts.balance_now",
                        lambda *args: (_ for _ in ()).throw(RuntimeError("boom")))
    crashed = api.get(f"/api/v1/balances?account={book[0]}")
    assert crashed.status_code == 500
    assert crashed.json() == {"code": "internal_error",
                              "message": "internal error; it has been logged"}


def test_the_openapi_schema_documents_the_batch_body(api) -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    body = schema["paths"]["/api/v1/transfers"]["post"]["requestBody"]
    items = body["content"]["application/json"]["schema"]["properties"]["transfers"]
    assert items["maxItems"] == 8_000 and "from" in items["items"]["properties"]
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"
