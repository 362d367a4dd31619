"""The event-store contract: one test class every `EventStore` backend must pass.

A backend's test module subclasses `EventStoreContract` and overrides `make_store` (a new, empty
store under `tmp_path`) and `reopen` (what a restart does to a store). Stores are fed the way
the writer feeds them (`Driver`): load, genesis on an empty log, then per group fetch the
idempotency records, execute, append. `Workload` generates random traffic of every command
type for the replay and crash tests.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.core.chain import GENESIS_PREV_HASH, verify_chain
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.machine import (
    Event,
    GroupOutcome,
    StateMachine,
    idempotency_scope,
    unpack_snapshot,
)
from ledger.core.state import STATUS_CODES, AccountStatus, HoldStatus, account_id_for
from ledger.eventstore.port import EventStore, EventStoreError
from ledger.replay import compare_states

LEDGER = "EUR"
CLIENT = "client-1"
GENESIS_NS = 1_700_000_000_000_000_000
_keys = itertools.count()


def cmd(type: str, **fields: Any) -> Command:
    """A command with a fresh idempotency key (unique within the test process)."""
    return Command(type, f"key-{next(_keys)}", CLIENT, **fields)


class Driver:
    """Feeds a store exactly as the writer does, and remembers every event it appended."""

    def __init__(self, store: EventStore, now_ns: int = GENESIS_NS) -> None:
        self.store = store
        self.state = store.load()
        self.machine = StateMachine(self.state)
        self.now_ns = max(now_ns, self.state.last_ts)
        self.events: list[Event] = []
        # False: groups are only written, as the writer does while the last one syncs.
        self.syncing = True
        if self.state.next_seq == 0:
            self._append(self.machine.genesis(self.now_ns))

    def commit(self, requests: list[Request], now_ns: int | None = None) -> GroupOutcome:
        """One group commit. The clock advances by 1 µs unless `now_ns` is given."""
        self.now_ns = self.now_ns + 1_000 if now_ns is None else now_ns
        scopes = [
            idempotency_scope(c.client, c.idempotency_key)
            for request in requests for c in request.commands if c.idempotency_key
        ]
        known = self.store.idempotency_records(scopes)
        outcome = self.machine.execute(requests, self.now_ns, known)
        self._append(outcome)
        return outcome

    def run(self, commands: list[Command], now_ns: int | None = None) -> GroupOutcome:
        """One group commit of one non-atomic request."""
        return self.commit([Request(commands)], now_ns)

    def _append(self, outcome: GroupOutcome) -> None:
        if self.syncing:
            self.store.append(outcome, self.state)
        else:
            self.store.write(outcome, self.state)
        self.events.extend(outcome.events)

    def open_accounts(self, count: int, balance: int = 0) -> list[str]:
        dids = [f"did:example:{next(_keys)}" for _ in range(count)]
        outcome = self.run([cmd("open_account", did=did) for did in dids])
        assert all(result.ok for result in outcome.results[0])
        ids = [account_id_for(LEDGER, did) for did in dids]
        if balance:
            self.run([cmd("mint", account=account, amount=balance) for account in ids])
        return ids


_WORKLOAD_MIX = {
    "transfer": 10, "mint": 2, "burn": 2, "hold": 4, "release": 3, "cancel_hold": 2,
    "freeze_account": 1, "unfreeze_account": 2, "open_account": 1, "close_account": 1,
    "stake_lock": 2, "stake_release": 1, "stake_slash": 1, "fee_transfer": 2, "fee_burn": 1,
    "promo_mint": 1, "promo_burn": 1, "repeat": 2, "conflict": 1,
}
_WORKLOAD_KINDS = list(_WORKLOAD_MIX)
_WORKLOAD_WEIGHTS = list(_WORKLOAD_MIX.values())


class Workload:
    """Random traffic over a few accounts: every command type, atomic requests, holds that
    expire, freezes and closes, idempotent repeats and key conflicts, business rejections."""

    def __init__(self, driver: Driver, seed: int, accounts: int = 8) -> None:
        self.driver = driver
        self.rng = random.Random(seed)
        self.accounts = driver.open_accounts(accounts, balance=1_000_000)
        self.hold_ids: list[str] = []
        self.sent: list[Command] = []

    def group(self) -> GroupOutcome:
        rng = self.rng
        requests = [
            Request([self.command() for _ in range(rng.randint(1, 5))],
                    atomic=rng.random() < 0.3)
            for _ in range(rng.randint(1, 4))
        ]
        # Sometimes the clock stands still or jumps: ts must stay non-decreasing either way.
        now_ns = self.driver.now_ns + rng.choice((0, 1_000, 1_000, 50_000))
        return self.driver.commit(requests, now_ns)

    def command(self) -> Command:
        rng = self.rng
        a, b = rng.sample(self.accounts, 2)
        amount = rng.randint(1, 40_000)
        kind = rng.choices(_WORKLOAD_KINDS, weights=_WORKLOAD_WEIGHTS)[0]
        if kind in ("release", "cancel_hold") and not self.hold_ids:
            kind = "hold"
        if kind in ("repeat", "conflict") and not self.sent:
            kind = "transfer"
        if kind == "repeat":
            return rng.choice(self.sent)
        if kind == "conflict":
            old = rng.choice(self.sent)
            return Command("transfer", old.idempotency_key, old.client, account=a, to=b,
                           amount=amount)
        if kind == "hold":
            hold_id = f"hld_eur_{next(_keys)}"
            self.hold_ids.append(hold_id)
            expires_at = self.driver.now_ns + rng.randint(1, 8) * 1_000
            command = cmd("hold", account=a, amount=amount, hold_id=hold_id,
                          beneficiary=rng.choice((b, None)),
                          expires_at=rng.choice((expires_at, None)))
        elif kind == "release":
            command = cmd("release", hold_id=rng.choice(self.hold_ids), beneficiary=b,
                          amount=rng.choice((None, rng.randint(1, 20_000))))
        elif kind == "cancel_hold":
            command = cmd("cancel_hold", hold_id=rng.choice(self.hold_ids))
        elif kind == "open_account":
            did = f"did:example:{next(_keys)}"
            self.accounts.append(account_id_for(LEDGER, did))
            command = cmd("open_account", did=did)
        elif kind in ("freeze_account", "unfreeze_account", "close_account"):
            command = cmd(kind, account=a)
        elif kind in ("stake_lock", "stake_release", "stake_slash"):
            command = cmd(kind, account=a, amount=amount, escrow_id=f"esc-{rng.randint(1, 3)}")
        elif kind == "transfer":
            command = cmd("transfer", account=a, to=b, amount=amount)
        elif kind == "fee_burn":
            command = cmd("fee_burn", amount=amount)
        else:  # mint, burn, fee_transfer, promo_mint, promo_burn
            command = cmd(kind, account=a, amount=amount)
        self.sent.append(command)
        return command


def snapshot_of(event: Event, account_id: str) -> tuple[int, ...] | None:
    packed = dict(event.snapshots).get(account_id)
    return None if packed is None else unpack_snapshot(packed)


class EventStoreContract:
    """Subclass as `Test<Backend>` and override `make_store` and `reopen`."""

    def make_store(self, tmp_path: Path) -> EventStore:
        raise NotImplementedError

    def reopen(self, store: EventStore, tmp_path: Path) -> EventStore:
        """The store as a restarted writer finds it (closing `store` if that applies)."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[EventStore]:
        self.opened = [self.make_store(tmp_path)]
        yield self.opened[0]
        for store in self.opened:
            store.close()

    def restart(self, store: EventStore, tmp_path: Path) -> EventStore:
        """`reopen`, keeping track of the new store so that the fixture closes it."""
        self.opened.append(self.reopen(store, tmp_path))
        return self.opened[-1]

    # -- empty store and genesis ---------------------------------------------------------------

    def test_empty_store(self, store: EventStore) -> None:
        state = store.load()
        assert (state.ledger, state.next_seq, state.last_ts) == (LEDGER, 0, 0)
        assert state.head_hash == GENESIS_PREV_HASH
        assert state.accounts == {} and state.holds == {}
        assert store.head() == (-1, GENESIS_PREV_HASH)
        assert list(store.read()) == []
        assert store.get(0) is None
        assert store.seq_of_event("evt_eur_0000000000000000") is None
        assert store.account_seqs(state.issuance_id) == []
        assert store.account_snapshot_at(state.issuance_id, 10) is None
        assert store.seq_at_time(GENESIS_NS) == -1
        assert store.idempotency_records([]) == {}
        assert store.idempotency_records([idempotency_scope(CLIENT, "k")]) == {}

    def test_genesis(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)
        store = self.restart(store, tmp_path)
        events = list(store.read())
        assert [e.seq for e in events] == [0, 1]
        assert verify_chain(events) == (2, driver.state.head_hash)
        assert store.head() == (1, driver.state.head_hash)
        state = store.load()
        assert set(state.accounts) == {state.issuance_id, state.fee_pool_id}
        assert store.account_snapshot_at(state.issuance_id, 0) == (0, 0, 0, 0, 0, 0)
        assert store.seq_at_time(GENESIS_NS) == 1
        assert Driver(store).events == []  # a loaded, non-empty log gets no second genesis

    # -- append and load -----------------------------------------------------------------------

    def test_load_after_reopen_equals_the_live_state(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        driver = Driver(store)
        workload = Workload(driver, seed=7)
        for _ in range(25):
            workload.group()
        store = self.restart(store, tmp_path)
        assert compare_states(store.load(), driver.state) == []
        assert store.head() == (driver.state.next_seq - 1, driver.state.head_hash)
        # The writer carries on from the loaded state, and the log stays one chain.
        continued = Driver(store, driver.now_ns)
        Workload(continued, seed=8).group()
        stored = list(store.read())
        assert verify_chain(stored) == (continued.state.next_seq, continued.state.head_hash)

    def test_holds_keep_their_status_and_expiry_across_reopen(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        driver = Driver(store)
        payer, payee = driver.open_accounts(2, balance=1_000)
        now = driver.now_ns
        driver.run([
            cmd("hold", account=payer, amount=100, hold_id="hld_eur_released", beneficiary=payee),
            cmd("hold", account=payer, amount=100, hold_id="hld_eur_cancelled"),
            cmd("hold", account=payer, amount=100, hold_id="hld_eur_expired",
                expires_at=now + 5_000),
            cmd("hold", account=payer, amount=100, hold_id="hld_eur_open",
                expires_at=now + 50_000),
        ])
        driver.run([cmd("release", hold_id="hld_eur_released", amount=60),
                       cmd("cancel_hold", hold_id="hld_eur_cancelled")])
        expired = driver.run([], now_ns=now + 10_000)
        assert [e.body["type"] for e in expired.events] == ["hold_expired"]

        store = self.restart(store, tmp_path)
        state = store.load()
        assert compare_states(state, driver.state) == []
        assert {hold_id: hold.status for hold_id, hold in state.holds.items()} == {
            "hld_eur_released": HoldStatus.released, "hld_eur_cancelled": HoldStatus.cancelled,
            "hld_eur_expired": HoldStatus.expired, "hld_eur_open": HoldStatus.open,
        }
        assert state.accounts[payer].balances["held"] == 100
        assert state.accounts[payee].balances["available"] == 1_060
        # The loaded state still knows when the open hold expires.
        restarted = Driver(store, driver.now_ns)
        outcome = restarted.run([], now_ns=now + 60_000)
        assert [e.body["refs"]["hold_id"] for e in outcome.events] == ["hld_eur_open"]
        assert store.load().holds["hld_eur_open"].status == HoldStatus.expired

    def test_append_refuses_a_group_that_does_not_continue_the_log(
        self, store: EventStore
    ) -> None:
        driver = Driver(store)
        (account,) = driver.open_accounts(1)
        outcome = driver.run([cmd("mint", account=account, amount=5)])
        head = store.head()
        with pytest.raises(EventStoreError, match="continues at"):
            store.append(outcome, driver.state)
        assert store.head() == head
        assert len(list(store.read())) == head[0] + 1

    def test_written_groups_are_read_before_their_sync_and_kept_after_it(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        driver = Driver(store)
        payer, payee = driver.open_accounts(2, balance=100)
        driver.syncing = False
        first = driver.run([cmd("transfer", account=payer, to=payee, amount=30)])
        second = driver.run([cmd("transfer", account=payer, to=payee, amount=20)])
        # Written, not yet synced: the store answers from both, and the second continued the
        # log after the first.
        assert [r.seq for r in first.results[0] + second.results[0]] == [
            store.head()[0] - 1, store.head()[0]]
        assert compare_states(store.load(), driver.state) == []
        assert set(store.idempotency_records(list(second.records))) == set(second.records)
        store.sync()
        store = self.restart(store, tmp_path)
        assert compare_states(store.load(), driver.state) == []
        assert store.load().accounts[payee].balances["available"] == 150

    def test_calls_after_close_fail(self, store: EventStore) -> None:
        store.close()
        store.close()  # closing twice is harmless
        with pytest.raises(EventStoreError):
            store.head()
        with pytest.raises(EventStoreError):
            store.load()
        with pytest.raises(EventStoreError):
            store.sync()

    # -- idempotency ---------------------------------------------------------------------------

    def test_idempotency_records(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)
        payer, payee = driver.open_accounts(2, balance=100)
        ok = cmd("transfer", account=payer, to=payee, amount=30)
        rejected = cmd("transfer", account=payer, to=payee, amount=10_000)
        malformed = cmd("transfer", account=payer, to=payer, amount=1)
        outcome = driver.run([ok, rejected, malformed])
        codes = [result.code for result in outcome.results[0]]
        assert codes == [ResultCode.ok, ResultCode.insufficient_funds,
                         ResultCode.accounts_must_be_different]

        store = self.restart(store, tmp_path)
        scopes = [idempotency_scope(CLIENT, c.idempotency_key) for c in (ok, rejected, malformed)]
        absent = idempotency_scope("another-client", ok.idempotency_key)
        records = store.idempotency_records([*scopes, absent])
        assert set(records) == set(scopes[:2])
        assert (records[scopes[0]].code, records[scopes[0]].seq) == (0, outcome.events[0].seq)
        assert (records[scopes[1]].code, records[scopes[1]].seq) == (
            ResultCode.insufficient_funds, -1)
        # A restarted writer answers a repeat from the stored record and writes nothing.
        restarted = Driver(store, driver.now_ns)
        repeat = restarted.run([ok])
        assert outcome.events and repeat.events == []
        assert repeat.results[0][0].replayed and repeat.results[0][0].seq == outcome.events[0].seq

    def test_a_group_of_rejections_still_stores_its_records(self, store: EventStore) -> None:
        driver = Driver(store)
        missing = account_id_for(LEDGER, "did:example:nobody")
        command = cmd("freeze_account", account=missing)
        outcome = driver.run([command])
        assert outcome.events == [] and outcome.results[0][0].code == ResultCode.account_not_found
        scope = idempotency_scope(CLIENT, command.idempotency_key)
        assert store.idempotency_records([scope])[scope].code == ResultCode.account_not_found

    # -- readers -------------------------------------------------------------------------------

    def test_head_read_and_get(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)
        # More events than one read chunk of the RocksDB store, to cross a chunk boundary.
        driver.open_accounts(1_100)
        driver.open_accounts(30, balance=7)
        store = self.restart(store, tmp_path)
        expected = [(e.seq, e.data, e.hash) for e in driver.events]
        last_seq = len(expected) - 1
        assert store.head() == (last_seq, driver.state.head_hash)
        assert [(e.seq, e.body, e.hash) for e in store.read()] == expected
        assert [e.seq for e in store.read(after_seq=99, limit=1_000)] == list(range(100, 1_100))
        assert [e.seq for e in store.read(after_seq=1_050)] == list(range(1_051, last_seq + 1))
        assert [e.seq for e in store.read(after_seq=-7, limit=2)] == [0, 1]
        assert list(store.read(limit=0)) == []
        assert list(store.read(after_seq=last_seq)) == []
        event = store.get(1_101)
        assert event is not None and (event.seq, event.body, event.hash) == expected[1_101]
        assert store.get(-1) is None and store.get(last_seq + 1) is None

    def test_seq_of_event(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)
        driver.open_accounts(3, balance=5)
        store = self.restart(store, tmp_path)
        for event in driver.events:
            assert store.seq_of_event(event.body["id"]) == event.seq
        assert store.seq_of_event("evt_eur_ffffffffffffffff") is None
        # An id names its seq, but only the event stored there says whether it is this one.
        real = driver.events[-1].body["id"]
        forged = real[:-8] + ("0" * 8 if real[-8:] != "0" * 8 else "1" * 8)
        assert store.seq_of_event(forged) is None
        assert store.seq_of_event(real.replace("evt_eur_", "evt_usd_")) is None
        assert store.seq_of_event(real.upper()) is None
        beyond = f"evt_eur_{driver.events[-1].seq + 1:012x}{real[-8:]}"
        assert store.seq_of_event(beyond) is None

    def test_account_seqs(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)
        a, b, c = driver.open_accounts(3, balance=100)
        driver.run([cmd("transfer", account=a, to=b, amount=10),
                       cmd("transfer", account=b, to=c, amount=10)])
        driver.run([cmd("freeze_account", account=a)])
        driver.run([cmd("unfreeze_account", account=a),
                       cmd("transfer", account=c, to=a, amount=1)])
        store = self.restart(store, tmp_path)
        seqs = [e.seq for e in driver.events if snapshot_of(e, a) is not None]
        assert len(seqs) == 6  # opened, minted, paid, frozen, unfrozen, paid
        assert store.account_seqs(a) == seqs
        assert store.account_seqs(a, after_seq=seqs[1]) == seqs[2:]
        assert store.account_seqs(a, before_seq=seqs[3]) == seqs[:3]
        assert store.account_seqs(a, after_seq=seqs[0], before_seq=seqs[5]) == seqs[1:5]
        assert store.account_seqs(a, after_seq=seqs[0] - 1, before_seq=seqs[0] + 1) == seqs[:1]
        assert store.account_seqs(a, limit=2) == seqs[:2]
        assert store.account_seqs(a, after_seq=seqs[2], limit=2) == seqs[3:5]
        assert store.account_seqs(a, limit=0) == []
        assert store.account_seqs(a, after_seq=seqs[-1]) == []
        assert store.account_seqs(a, before_seq=seqs[0]) == []
        assert store.account_seqs(account_id_for(LEDGER, "did:example:nobody")) == []
        # Only the events that touched b, not its neighbours' in the same group.
        assert store.account_seqs(b) == [e.seq for e in driver.events
                                         if snapshot_of(e, b) is not None]

    def test_account_snapshot_at(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)
        a, b, c = driver.open_accounts(3, balance=100)
        driver.run([cmd("hold", account=a, amount=30, hold_id="hld_eur_x")])
        driver.run([cmd("transfer", account=b, to=c, amount=5)])
        driver.run([cmd("freeze_account", account=a)])
        store = self.restart(store, tmp_path)
        touching = [e for e in driver.events if snapshot_of(e, a) is not None]
        assert store.account_snapshot_at(a, touching[0].seq - 1) is None
        assert store.account_snapshot_at(a, -1) is None
        for event in touching:
            assert store.account_snapshot_at(a, event.seq) == snapshot_of(event, a)
        # Between two events that touched a, the earlier one's snapshot holds.
        between = [e for e in driver.events
                   if e.seq > touching[0].seq and snapshot_of(e, a) is None]
        assert len(between) >= 4  # b and c opened, b and c minted, b paid c
        for event in between:
            earlier = [e for e in touching if e.seq < event.seq][-1]
            assert store.account_snapshot_at(a, event.seq) == snapshot_of(earlier, a)
        frozen = STATUS_CODES[AccountStatus.frozen]
        assert store.account_snapshot_at(a, 10**12) == (frozen, 70, 30, 0, 0, 0)
        assert store.account_snapshot_at(c, 10**12) == (0, 105, 0, 0, 0, 0)

    def test_account_snapshots_at_answers_as_one_lookup_each(
        self, store: EventStore, tmp_path: Path
    ) -> None:
        """The batch form gives what `account_snapshot_at` gives for every point: at the
        account's own events (the exact keys a store may fetch at once), between them, before
        the account existed, at -1, far ahead, and for an account that never existed."""
        driver = Driver(store)
        workload = Workload(driver, seed=11, accounts=6)
        for _ in range(15):
            workload.group()
        store = self.restart(store, tmp_path)
        head = store.head()[0]
        nobody = account_id_for(LEDGER, "did:example:nobody")
        points = [(account, seq) for account in [*workload.accounts, nobody]
                  for seq in (-1, 0, 1, head // 3, head // 2, head - 1, head, 10**12)]
        points += [(account, event.seq) for event in driver.events
                   for account in workload.accounts if snapshot_of(event, account) is not None]
        expected = [store.account_snapshot_at(account, seq) for account, seq in points]
        assert any(snapshot is None for snapshot in expected)
        assert store.account_snapshots_at(points) == expected
        assert store.account_snapshots_at([]) == []

    def test_account_now_is_the_state_at_the_head(self, store: EventStore) -> None:
        driver = Driver(store)
        a, b = driver.open_accounts(2, balance=50)
        driver.run([cmd("transfer", account=a, to=b, amount=8)])
        driver.run([cmd("mint", account=b, amount=1)])  # a is not touched by the last group
        head = store.head()[0]
        assert store.account_now(a) == ((0, 42, 0, 0, 0, 0), head)
        assert store.account_now(b) == ((0, 59, 0, 0, 0, 0), head)
        assert store.account_now(account_id_for(LEDGER, "did:example:nobody")) == (None, head)

    def test_seq_at_time(self, store: EventStore, tmp_path: Path) -> None:
        driver = Driver(store)  # genesis: seqs 0-1 at GENESIS_NS
        t = GENESIS_NS
        (a,) = driver.open_accounts(1)  # seq 2 at t + 1_000

        def mints(count: int, now_ns: int) -> int:
            driver.run([cmd("mint", account=a, amount=1) for _ in range(count)], now_ns)
            return driver.state.next_seq - 1

        first = mints(3, t + 100_000)  # seqs 3-5
        second = mints(2, t + 200_000)  # seqs 6-7
        same_ts = mints(2, t + 200_000)  # seqs 8-9, same clock reading
        backwards = mints(1, t + 150_000)  # seq 10: the clock never runs backwards
        driver.run([cmd("burn", account=a, amount=10**6)], t + 250_000)  # rejected: no event
        last = mints(2, t + 300_000)  # seqs 11-12
        assert (first, second, same_ts, backwards, last) == (5, 7, 9, 10, 12)
        assert driver.events[10].body["ts"] == t + 200_000
        store = self.restart(store, tmp_path)
        assert store.seq_at_time(-1) == -1
        assert store.seq_at_time(t - 1) == -1
        assert store.seq_at_time(t) == 1
        assert store.seq_at_time(t + 1_000) == 2
        assert store.seq_at_time(t + 99_999) == 2
        assert store.seq_at_time(t + 100_000) == first
        assert store.seq_at_time(t + 199_999) == first
        assert store.seq_at_time(t + 200_000) == backwards
        assert store.seq_at_time(t + 299_999) == backwards
        assert store.seq_at_time(t + 300_000) == last
        assert store.seq_at_time(2**70) == last
