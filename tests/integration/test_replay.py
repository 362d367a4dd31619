"""Replay rebuilds the live state from the log alone, on both event stores.

The workload covers every command type, atomic requests that fail half-way, holds that expire,
freezes and closes, idempotent repeats; the replayed state must equal the writer's live state
and the stored current state, and a partial replay must agree with the as-of index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.core.codes import ResultCode
from ledger.core.commands import Request
from ledger.core.state import HoldStatus, LedgerState
from ledger.eventstore.memory import MemoryEventStore
from ledger.eventstore.port import EventStore
from ledger.eventstore.rocks import RocksEventStore
from ledger.replay import compare_states, replay, verify_tail
from tests.unit.eventstore_contract import LEDGER, Driver, Workload, cmd


@pytest.fixture(params=["memory", "rocks"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        store: EventStore = MemoryEventStore(LEDGER)
    else:
        store = RocksEventStore(tmp_path / "eur.rocksdb", LEDGER)
    yield store
    store.close()


def run_workload(store: EventStore, seed: int, groups: int) -> tuple[Driver, Counter[str]]:
    """Random traffic; returns the driver and how often each event type and result code
    occurred."""
    driver = Driver(store)
    workload = Workload(driver, seed)
    seen: Counter[str] = Counter()
    for _ in range(groups):
        outcome = workload.group()
        seen.update(e.body["type"] for e in outcome.events)
        seen.update(r.code.name for results in outcome.results for r in results)
        seen.update("replayed" for results in outcome.results for r in results if r.replayed)
    return driver, seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_equals_the_live_and_the_stored_state(store: EventStore, seed: int) -> None:
    driver, seen = run_workload(store, seed, groups=120)
    replayed, count = replay(store)
    assert count == driver.state.next_seq
    assert compare_states(replayed, driver.state) == []
    assert compare_states(store.load(), replayed) == []

    # The workload did exercise what replay must get right.
    for what in ("hold", "release", "hold_cancelled", "hold_expired", "account_frozen",
                 "account_unfrozen", "stake_lock", "linked_command_failed", "replayed",
                 "idempotency_key_reused_with_different_request"):
        assert seen[what] > 0, what
    assert any(hold.status == HoldStatus.open for hold in replayed.holds.values())


def test_replay_handles_atomic_requests_and_closed_accounts(store: EventStore) -> None:
    driver = Driver(store)
    a, b = driver.open_accounts(2, balance=100)
    fresh, spare = driver.open_accounts(2)

    failed = driver.commit([Request([
        cmd("transfer", account=a, to=b, amount=60),
        cmd("hold", account=a, amount=10, hold_id="hld_eur_rolled_back"),
        cmd("transfer", account=a, to=b, amount=60),  # insufficient: the chain rolls back
    ], atomic=True)])
    assert [r.code for r in failed.results[0]] == [
        ResultCode.linked_command_failed, ResultCode.linked_command_failed,
        ResultCode.insufficient_funds,
    ]
    assert failed.events == []
    driver.commit([Request([cmd("transfer", account=a, to=b, amount=60),
                            cmd("close_account", account=fresh)], atomic=True)])
    driver.run([cmd("freeze_account", account=spare)])

    replayed, _ = replay(store)
    assert compare_states(replayed, driver.state) == []
    assert "hld_eur_rolled_back" not in replayed.holds
    assert replayed.accounts[fresh].status == "closed"
    assert replayed.accounts[spare].status == "frozen"
    assert replayed.accounts[b].balances["available"] == 160


def test_partial_replay_agrees_with_the_as_of_index(store: EventStore) -> None:
    run_workload(store, seed=4, groups=40)
    head_seq = store.head()[0]
    for seq in (0, 1, 30, head_seq // 2, head_seq - 1, head_seq):
        replayed, count = replay(store, up_to_seq=seq)
        assert count == seq + 1 == replayed.next_seq
        assert replayed.head_hash == store.get(seq).hash  # type: ignore[union-attr]
        for account in replayed.accounts.values():
            assert store.account_snapshot_at(account.id, seq) == account.snapshot()
    assert replay(store, up_to_seq=-1)[1] == 0
    assert replay(store, up_to_seq=head_seq + 100)[1] == head_seq + 1


def test_verify_tail(store: EventStore) -> None:
    verify_tail(store, 10)  # an empty log has nothing to verify
    run_workload(store, seed=5, groups=10)
    head_seq = store.head()[0]
    for count in (0, 1, 7, head_seq, head_seq + 1, head_seq + 50):
        verify_tail(store, count)
    with pytest.raises(ValueError, match="count must be >= 0"):
        verify_tail(store, -1)


def test_compare_states_names_every_difference(store: EventStore) -> None:
    driver, _ = run_workload(store, seed=6, groups=15)
    a, b = store.load(), store.load()
    assert compare_states(a, b) == []
    user = next(acc for acc in b.accounts.values() if acc.kind == "user" and acc.status == "open")
    user.balances["held"] += 5
    user.status = "frozen"
    hold = next(iter(b.holds.values()))
    old_status = hold.status
    hold.status = "cancelled" if old_status != "cancelled" else "released"
    del b.accounts[driver.state.fee_pool_id]
    b.next_seq += 1
    b.head_hash = bytes(32)
    held = a.accounts[user.id].balances["held"]
    assert sorted(compare_states(a, b)) == sorted([
        f"next_seq: {a.next_seq} != {a.next_seq + 1}",
        f"head_hash: {a.head_hash.hex()} != {'00' * 32}",
        f"account {user.id}: status 'open' != 'frozen'",
        f"account {user.id}: held balance {held} != {held + 5}",
        f"account {driver.state.fee_pool_id}: only in a",
        f"hold {hold.id}: status {old_status!r} != {hold.status!r}",
    ])
    assert compare_states(LedgerState("USD"), LedgerState(LEDGER)) == ["ledger: 'USD' != 'EUR'"]
