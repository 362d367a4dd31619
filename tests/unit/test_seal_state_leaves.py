"""State-tree leaves (proofs.ledger_state): one encoding, one liability rule, replay = ledger."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.canonical import encode as ledger_canonical
from ledger.core.state import FEE_POOL_DID, ISSUANCE_DID
from ledger.core.state import account_id_for as ledger_account_id_for
from ledger.eventstore.memory import MemoryEventStore
from proofs.ledger_state import (
    BUCKETS,
    AccountLeaf,
    LedgerStates,
    StateLeafError,
    account_id_for,
    canonical_json,
    decode_leaf,
    is_issuance_account,
)
from tests.unit.eventstore_contract import LEDGER, Driver, Workload

USER = ledger_account_id_for("EUR", "did:example:alice")
ISSUANCE = ledger_account_id_for("EUR", ISSUANCE_DID)


def test_the_leaf_encoding_is_the_ledgers_canonical_json():
    leaf = AccountLeaf(USER, {"available": 5, "held": 1, "bonded": 2, "fee": 0, "promo": 7}, 9)
    value = {"id": USER, "buckets": leaf.buckets, "last_seq": 9}
    assert leaf.encode() == ledger_canonical(value)
    assert leaf.encode() == (
        b'{"buckets":{"available":5,"bonded":2,"fee":0,"held":1,"promo":7},"id":"'
        + USER.encode() + b'","last_seq":9}'
    )
    assert decode_leaf(leaf.encode()) == leaf


@pytest.mark.parametrize("ledger", ["EUR", "USD", "GAMES1"])
def test_account_ids_and_the_issuance_account_match_the_ledger(ledger):
    assert account_id_for(ledger, "x") == ledger_account_id_for(ledger, "x")
    assert is_issuance_account(ledger_account_id_for(ledger, ISSUANCE_DID))
    assert not is_issuance_account(ledger_account_id_for(ledger, FEE_POOL_DID))
    assert not is_issuance_account(ledger_account_id_for(ledger, "did:example:bob"))


@pytest.mark.parametrize("identifier", ["", "acc", "acc_eur", "evt_eur_00", ISSUANCE + "0"])
def test_other_ids_are_not_the_issuance_account(identifier):
    assert not is_issuance_account(identifier)


def test_the_liability_is_available_held_bonded_fee_and_zero_for_issuance():
    buckets = {"available": 5, "held": 1, "bonded": 2, "fee": 3, "promo": 100}
    assert AccountLeaf(USER, buckets, 1).liability() == 11
    issuance = {"available": -11, "held": 0, "bonded": 0, "fee": 0, "promo": -100}
    assert AccountLeaf(ISSUANCE, issuance, 1).liability() == 0
    with pytest.raises(StateLeafError, match="negative held"):
        AccountLeaf(USER, {**buckets, "held": -1}, 1).liability()


@pytest.mark.parametrize("data", [
    b'{"buckets":{"available":1,"bonded":0,"fee":0,"held":0,"promo":0},"id":"a","last_seq":1} ',
    b'{"buckets": {"available":1,"bonded":0,"fee":0,"held":0,"promo":0},"id":"a","last_seq":1}',
    b'{"buckets":{"available":1,"bonded":0,"fee":0,"held":0},"id":"a","last_seq":1}',
    b'{"buckets":{"available":true,"bonded":0,"fee":0,"held":0,"promo":0},"id":"a","last_seq":1}',
    b'{"buckets":{"available":1.0,"bonded":0,"fee":0,"held":0,"promo":0},"id":"a","last_seq":1}',
    b'{"buckets":{"available":1,"bonded":0,"fee":0,"held":0,"promo":0},"id":"a","last_seq":-1}',
    b'{"buckets":{"available":1,"bonded":0,"fee":0,"held":0,"promo":0},"id":"a","last_seq":1,'
    b'"x":0}',
    b'{"buckets":{"available":1,"bonded":0,"fee":0,"held":0,"promo":0},"id":"","last_seq":1}',
    b"[]",
    b"\xff",
    b"[" * 100_000 + b"]" * 100_000,
])
def test_malformed_or_non_canonical_leaves_are_refused(data):
    with pytest.raises(StateLeafError):
        decode_leaf(data)


@pytest.mark.parametrize("seed", [1, 2])
def test_replaying_bodies_gives_the_ledgers_accounts_and_sums_to_outstanding(seed):
    store = MemoryEventStore(LEDGER)
    driver = Driver(store)
    workload = Workload(driver, seed)
    for _ in range(120):
        workload.group()
    states = LedgerStates()
    for event in store.read():
        states.apply(json.loads(event.body))
    live = driver.state.accounts.values()
    assert len(states.leaves) == len(live)
    for account in live:
        leaf = states.leaves[states.positions[account.id]]
        assert states.positions[account.id] == account.position
        assert (leaf.buckets, leaf.last_seq) == (account.balances, account.last_seq)
    total = sum(states.leaf(position)[1] for position in range(len(states.leaves)))
    assert total == driver.state.outstanding() > 0
    assert states.take_dirty() == list(range(len(live)))
    assert states.take_dirty() == []


def test_events_naming_unknown_accounts_or_reopening_one_are_refused():
    states = LedgerStates()
    opened = {"seq": 0, "type": "account_opened", "details": {"account": USER}, "legs": []}
    states.apply(opened)
    with pytest.raises(StateLeafError, match="opened twice"):
        states.apply({**opened, "seq": 1})
    with pytest.raises(StateLeafError, match="unknown account"):
        states.apply({"seq": 2, "type": "transfer", "details": {}, "legs": [
            {"account": "acc_eur_nobody", "bucket": "available", "amount": 1},
        ]})
    with pytest.raises(StateLeafError, match="malformed leg"):
        states.apply({"seq": 3, "type": "transfer", "details": {}, "legs": [
            {"account": USER, "bucket": "savings", "amount": 1},
        ]})


@settings(max_examples=300, deadline=None)
@given(
    account_id=st.one_of(
        st.text(min_size=1, max_size=12),
        st.sampled_from([USER, ISSUANCE, 'a"b', "a\\b", "tab\there", "é", "\u2028", "\x00x"]),
    ),
    amounts=st.lists(st.integers(-(2**70), 2**70), min_size=5, max_size=5),
    last_seq=st.integers(0, 2**63),
)
def test_the_written_out_leaf_is_byte_for_byte_canonical_json(account_id, amounts, last_seq):
    leaf = AccountLeaf(account_id, dict(zip(BUCKETS, amounts, strict=True)), last_seq)
    value = {"id": account_id, "buckets": leaf.buckets, "last_seq": last_seq}
    assert leaf.encode() == canonical_json(value)
    if abs(max(amounts, key=abs)) < 2**63:  # orjson's range
        assert leaf.encode() == ledger_canonical(value)
