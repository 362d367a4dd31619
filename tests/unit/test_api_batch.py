"""The transfer-batch translation of the ledger API, without a server or database.

The API hands client JSON to the state machine nearly as given, so that malformed items are
rejected per item by the core. These tests hold the two halves of that bargain: each malformed
shape gets its documented code, and no JSON value at all can make the state machine (or the
writer's key scoping) raise, which would fail every request of a group commit.
"""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiaccess.errors import ApiError
from ledger.api.batch import batch_commands, batch_ledger, batch_parse, item_command
from ledger.api.eventjson import event_json
from ledger.api.execution import idempotency_keys_normalize, ledger_of_id, rejection_status
from ledger.api.schemas import MAX_BATCH_COMMANDS
from ledger.api.timestamps import rfc3339_to_ns
from ledger.core.codes import ResultCode
from ledger.core.commands import Request
from ledger.core.machine import StateMachine, idempotency_scope
from ledger.core.state import LedgerState, account_id_for

LEDGER = "EUR"
NOW = 1_700_000_000 * 10**9
ALICE = account_id_for(LEDGER, "did:example:alice")
BOB = account_id_for(LEDGER, "did:example:bob")


# -- RFC 3339 ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("1970-01-01T00:00:00Z", 0),
    ("1970-01-01T00:00:01.5Z", 1_500_000_000),
    ("2023-11-14T22:13:20Z", 1_700_000_000 * 10**9),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000 * 10**9),
    ("2023-11-14t22:13:20.123456789z", 1_700_000_000 * 10**9 + 123_456_789),
    ("1969-12-31T23:59:59Z", -10**9),
])
def test_rfc3339_times_convert_to_exact_nanoseconds(text: str, expected: int) -> None:
    assert rfc3339_to_ns(text) == expected


@pytest.mark.parametrize("text", [
    "2023-11-14T22:13:20", "2023-13-01T00:00:00Z", "2023-11-14T22:13:60Z", "yesterday", "",
    "2023-11-14T22:13:20.1234567890Z", "2023-11-14T22:13:20+25:00",
])
def test_malformed_times_are_refused(text: str) -> None:
    assert rfc3339_to_ns(text) is None


# -- ids and statuses ----------------------------------------------------------------------------

@pytest.mark.parametrize(("object_id", "ledger"), [
    (ALICE, "EUR"), ("hld_usd_0123", "USD"), ("evt_eur_00ab", "EUR"), ("acc_x_1", "X"),
    ("plain", None), ("acc_1x_2", None), (None, None), (42, None), ("acc__x", None),
])
def test_ids_name_their_ledger(object_id, ledger) -> None:
    assert ledger_of_id(object_id) == ledger


def test_single_command_rejections_map_to_http_statuses() -> None:
    assert rejection_status(ResultCode.amount_must_be_positive) == 422
    assert rejection_status(ResultCode.ledger_mismatch) == 422
    assert rejection_status(ResultCode.account_not_found) == 404
    assert rejection_status(ResultCode.hold_not_found) == 404
    assert rejection_status(ResultCode.idempotency_key_reused_with_different_request) == 409
    assert rejection_status(ResultCode.insufficient_funds) == 409


# -- the batch envelope --------------------------------------------------------------------------

def _refusal(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        batch_parse(body)
    return caught.value


def test_a_body_that_is_not_json_is_400() -> None:
    error = _refusal(b'{"transfers": [')
    assert (error.status, error.code) == (400, "request_malformed")


@pytest.mark.parametrize("body", [
    b"[]", b'{"transfers": {}}', b'{"items": []}', b'{"transfers": [], "atomic": "yes"}',
    b'{"transfers": [], "ledger": 5}',
])
def test_a_batch_of_the_wrong_shape_is_422(body: bytes) -> None:
    assert _refusal(body).status == 422


def test_a_batch_over_the_limit_is_413() -> None:
    body = orjson.dumps({"transfers": [{}] * (MAX_BATCH_COMMANDS + 1)})
    error = _refusal(body)
    assert (error.status, error.code) == (413, "batch_too_large")
    items, atomic, ledger = batch_parse(orjson.dumps({"transfers": [{}] * MAX_BATCH_COMMANDS}))
    assert (len(items), atomic, ledger) == (MAX_BATCH_COMMANDS, False, None)


def test_the_ledger_is_given_or_named_by_the_first_account_id() -> None:
    assert batch_ledger([], "USD") == "USD"
    assert batch_ledger([5, {"amount": 1}, {"to": BOB}, {"from": "acc_usd_1"}], None) == "EUR"
    assert batch_ledger([{"type": "release", "hold_id": "hld_gbp_7"}], None) == "GBP"
    with pytest.raises(ApiError) as caught:
        batch_ledger([{"from": "nobody"}], None)
    assert caught.value.code == "ledger_required"


# -- items to commands ---------------------------------------------------------------------------

def test_an_item_maps_field_by_field() -> None:
    command = item_command({
        "from": ALICE, "to": BOB, "amount": 5, "idempotency_key": "k", "metadata": {"a": 1},
        "netting_batch_id": "n1", "did": "ignored for a transfer",
    }, "api:7")
    assert (command.type, command.client, command.account, command.to, command.amount) == (
        "transfer", "api:7", ALICE, BOB, 5)
    assert (command.metadata, command.netting_batch_id, command.did) == ({"a": 1}, "n1", None)


def test_account_is_a_synonym_of_from_unless_they_differ() -> None:
    assert item_command({"account": ALICE}, "c").account == ALICE
    assert item_command({"from": ALICE, "account": ALICE}, "c").account == ALICE
    assert item_command({"from": ALICE, "account": BOB}, "c").account != ALICE


def test_expiry_times_become_nanoseconds() -> None:
    assert item_command({"expires_at": "1970-01-01T00:00:02Z"}, "c").expires_at == 2 * 10**9
    assert item_command({"expires_at": 7}, "c").expires_at == 7
    assert item_command({"expires_at": "soon"}, "c").expires_at == -1


def _decide(items: list, atomic: bool = False) -> list[str]:
    """Codes the state machine gives the items, on a shard with ALICE (funded) and BOB."""
    machine = StateMachine(LedgerState(LEDGER))
    machine.genesis(NOW)
    known: dict = {}
    setup = batch_commands([
        {"type": "open_account", "did": "did:example:alice", "idempotency_key": "o1"},
        {"type": "open_account", "did": "did:example:bob", "idempotency_key": "o2"},
        {"type": "mint", "account": ALICE, "amount": 100, "idempotency_key": "m1"},
    ], "c")
    machine.execute([Request(setup)], NOW + 1, known)
    commands = batch_commands(items, "c")
    idempotency_keys_normalize(commands)
    for command in commands:  # what the writer does before deciding
        if command.idempotency_key and type(command.idempotency_key) is str:
            idempotency_scope(command.client, command.idempotency_key)
    outcome = machine.execute([Request(commands, atomic)], NOW + 2, known)
    return [result.code.name for result in outcome.results[0]]


def test_malformed_items_are_rejected_one_by_one() -> None:
    codes = _decide([
        {"from": ALICE, "to": BOB, "amount": 0, "idempotency_key": "a"},
        {"from": ALICE, "to": BOB, "amount": "10", "idempotency_key": "b"},
        {"from": ALICE, "to": BOB, "amount": 1.0, "idempotency_key": "c"},
        {"from": ALICE, "to": BOB, "amount": 1},
        {"from": ALICE, "to": BOB, "amount": 1, "idempotency_key": "ключ"},
        17,
        {"type": ["transfer"], "idempotency_key": "d"},
        {"type": "teleport", "idempotency_key": "e"},
        {"type": "open_account", "did": "x", "kind": {"a": 1}, "idempotency_key": "f"},
        {"type": "open_account", "did": "x", "safeguarding": [1], "idempotency_key": "g"},
        {"from": ALICE, "account": BOB, "to": BOB, "amount": 1, "idempotency_key": "h"},
        {"type": "hold", "account": ALICE, "amount": 1, "expires_at": "never",
         "idempotency_key": "i"},
        {"from": ALICE, "to": "acc_usd_0", "amount": 1, "idempotency_key": "j"},
        {"from": ALICE, "to": BOB, "amount": 1, "idempotency_key": "ok"},
    ])
    assert codes == [
        "amount_must_be_positive", "amount_must_be_positive", "amount_must_be_positive",
        "idempotency_key_required", "idempotency_key_invalid", "command_type_unknown",
        "command_type_unknown", "command_type_unknown", "account_kind_invalid",
        "safeguarding_class_invalid", "reference_invalid", "expiry_invalid",
        "ledger_mismatch", "ok",
    ]


def test_an_atomic_batch_with_a_malformed_item_applies_nothing() -> None:
    codes = _decide([
        {"from": ALICE, "to": BOB, "amount": 1, "idempotency_key": "a"},
        {"from": ALICE, "to": BOB, "amount": -1, "idempotency_key": "b"},
    ], atomic=True)
    assert codes == ["linked_command_failed", "amount_must_be_positive"]


_FIELDS = ("type", "idempotency_key", "from", "to", "account", "beneficiary", "amount",
           "hold_id", "expires_at", "escrow_id", "trial_id", "netting_batch_id", "metadata",
           "did", "kind", "tags", "safeguarding")
# What orjson can hand over: no NaN or infinity, no lone surrogates, integers up to 2**64-1.
_json_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)
_json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                 | st.floats(allow_nan=False, allow_infinity=False) | _json_text
                 | st.sampled_from([ALICE, BOB, "transfer", "hold", "open_account", "k"]))
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_json_text, inner, max_size=3),
    max_leaves=6,
)
_items = st.dictionaries(st.sampled_from(_FIELDS), _json_values, max_size=8) | _json_values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_items, max_size=6), st.booleans())
def test_no_json_item_makes_the_state_machine_raise(items: list, atomic: bool) -> None:
    # Raising would fail the writer's whole group commit: every client's requests in it.
    codes = _decide(items, atomic)
    assert len(codes) == len(items)


# -- events --------------------------------------------------------------------------------------

def test_event_json_is_the_stored_body_plus_its_hash() -> None:
    body = b'{"seq":3,"type":"mint"}'
    chain_hash = hashlib.sha256(b"x").digest()
    served = orjson.loads(orjson.dumps({"event": event_json(body, chain_hash)}))["event"]
    assert served == {"seq": 3, "type": "mint", "hash": chain_hash.hex()}
