"""The compiled fast path against the pure-Python machine: same results, same bytes.

Two books run the same groups, one with the native fast path (`StateMachine(native=True)`, the
writer's default) and one without. With the same seeded id generator they must produce
byte-identical events, chain hashes, snapshots, idempotency records (fingerprints included: a
retry may be judged by either path) and states. The commands drawn are mostly plain transfers,
the fast path's only business, and each kind of deviation it must hand back to Python: bad
fields, missing or frozen accounts, missing funds, replays, conflicting key reuse, metadata,
escaping in keys and clients, atomic requests, and other command types in between.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import machine as machine_module
from ledger.core.commands import MAX_AMOUNT, Command, Request
from ledger.core.machine import StateMachine
from ledger.core.state import LedgerState, account_id_for
from tests.unit.core.conftest import NOW, state_picture

LEDGER = "EUR"
DIDS = ("alice", "bob", "carol", "dave")
IDS = tuple(account_id_for(LEDGER, did) for did in DIDS)
ODD_ACCOUNTS = (
    account_id_for(LEDGER, "nobody"), account_id_for("USD", "alice"), "acc with space", "",
    account_id_for(LEDGER, "system:issuance"), account_id_for(LEDGER, "system:fee-pool"),
)
KEYS = st.one_of(
    st.integers(0, 10**6).map(lambda n: f"k-{n}"),
    st.sampled_from(['q"uote', "back\\slash", "sp ace", "é", "", "x" * 129, "x" * 128, None]),
)
CLIENTS = st.sampled_from(["client-1", "client-2", 'cl"ient', "cli\\ent", "clïent", "c d", ""])


def test_the_extension_is_built():
    """`make install` compiles it; without it the writer silently runs at a third of the speed."""
    assert machine_module._fastpath is not None


class Pair:
    """Two shards fed identically: `fast` with the native path, `slow` without."""

    def __init__(self, seed: int) -> None:
        self.books = []
        for native in (True, False):
            state = LedgerState(LEDGER)
            machine = StateMachine(state, native=native)
            machine._random = random.Random(seed)
            known: dict[bytes, Any] = {}
            events = list(machine.genesis(NOW).events)
            self.books.append((machine, known, events))
        self.now = NOW
        self.sent: list[Command] = []
        self.native: list[bool] = []

    def run(self, requests: list[Request]) -> list[list[tuple]]:
        self.now += 1_000
        outcomes = []
        for machine, known, events in self.books:
            outcome = machine.execute(_copies(requests), self.now, known)
            events.extend(outcome.events)
            outcomes.append(outcome)
        fast, slow = outcomes
        # Which events the native path made (only bytes, no body yet), before comparing bodies.
        self.native = [event._body is None for event in fast.events]
        summary = [[_result(r) for r in results] for results in fast.results]
        assert summary == [[_result(r) for r in results] for results in slow.results]
        assert [_event(e) for e in fast.events] == [_event(e) for e in slow.events]
        assert {k: r.pack() for k, r in fast.records.items()} == {
            k: r.pack() for k, r in slow.records.items()
        }
        return summary

    def assert_same_books(self) -> None:
        (fast, fast_known, _), (slow, slow_known, _) = self.books
        assert state_picture(fast.state) == state_picture(slow.state)
        assert fast.state.head_hash == slow.state.head_hash
        assert {k: r.pack() for k, r in fast_known.items()} == {
            k: r.pack() for k, r in slow_known.items()
        }


def _copies(requests: list[Request]) -> list[Request]:
    # Each machine gets its own command objects, so neither can see the other's changes.
    return [
        Request([Command(**{f: getattr(c, f) for f in Command.__slots__}) for c in r.commands],
                r.atomic)
        for r in requests
    ]


def _result(result) -> tuple:
    return (result.code, result.replayed, result.seq, result.account)


def _event(event) -> tuple:
    return (event.seq, event.type, event.data, event.hash, event.snapshots, event.body)


def _opening(pair: Pair) -> None:
    opens = [Command("open_account", f"open-{did}", client="ops", did=did) for did in DIDS]
    mints = [Command("mint", f"mint-{i}", client="ops", account=account_id, amount=1_000)
             for i, account_id in enumerate(IDS)]
    pair.run([Request(opens), Request(mints)])


@st.composite
def transfers(draw: st.DrawFn, pair: Pair) -> Command:
    """Mostly a plain transfer that can go through; now and then one thing is off."""
    if pair.sent and draw(st.integers(0, 5)) == 0:
        earlier = draw(st.sampled_from(pair.sent))
        if draw(st.booleans()):
            return earlier  # an idempotent retry
        changed = earlier.amount + 1 if type(earlier.amount) is int else 1
        return Command(**{**{f: getattr(earlier, f) for f in Command.__slots__},
                          "amount": changed})  # the same key, another request
    source = draw(st.sampled_from(IDS + ODD_ACCOUNTS) if draw(st.integers(0, 7)) == 0
                  else st.sampled_from(IDS))
    target = draw(st.sampled_from(IDS + ODD_ACCOUNTS) if draw(st.integers(0, 7)) == 0
                  else st.sampled_from(IDS))
    amount = draw(st.one_of(st.integers(1, 400), st.sampled_from([0, -1, MAX_AMOUNT, True, 2.0]))
                  if draw(st.integers(0, 7)) == 0 else st.integers(1, 400))
    odd = draw(st.integers(0, 11))
    fields: dict[str, Any] = {}
    if odd == 1:
        fields["netting_batch_id"] = draw(st.sampled_from(["nb-1", 'n"b', "n b", "x" * 129]))
    elif odd == 2:
        fields["metadata"] = draw(st.sampled_from([{}, {"order": "o-1"}, {"n": 5}]))
    elif odd == 3:
        fields[draw(st.sampled_from(["escrow_id", "trial_id", "hold_id", "beneficiary"]))] = "r-1"
    elif odd == 4:
        fields["type"] = draw(st.sampled_from(["mint", "burn", "stake_lock", "promo_mint"]))
    key = draw(KEYS) if draw(st.integers(0, 5)) == 0 else f"t-{len(pair.sent)}"
    client = draw(CLIENTS) if draw(st.integers(0, 5)) == 0 else "client-1"
    command = Command(fields.pop("type", "transfer"), key, client=client, account=source,
                      to=target, amount=amount, **fields)
    if command.type != "transfer":
        command.to = None
    pair.sent.append(command)
    return command


def _lifecycle(draw: st.DrawFn, pair: Pair) -> Command:
    """Freezing and unfreezing in between, so the fast path meets frozen accounts."""
    kind = draw(st.sampled_from(["freeze_account", "unfreeze_account"]))
    return Command(kind, f"life-{len(pair.sent)}-{kind}", client="ops",
                   account=draw(st.sampled_from(IDS)))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_fast_and_python_paths_agree_byte_for_byte(data: st.DataObject, seed: int) -> None:
    pair = Pair(seed)
    _opening(pair)
    for _ in range(data.draw(st.integers(1, 6))):
        requests = []
        for _ in range(data.draw(st.integers(1, 3))):
            commands = [
                _lifecycle(data.draw, pair) if data.draw(st.integers(0, 9)) == 0
                else data.draw(transfers(pair))
                for _ in range(data.draw(st.integers(1, 12)))
            ]
            requests.append(Request(commands, atomic=data.draw(st.integers(0, 5)) == 0))
        pair.run(requests)
    pair.assert_same_books()


def test_a_plain_transfer_takes_the_fast_path_and_its_body_reads_back():
    pair = Pair(seed=7)
    _opening(pair)
    command = Command("transfer", "t-1", client="client-1", account=IDS[0], to=IDS[1],
                      amount=250, netting_batch_id="nb-9", metadata={})
    [[result]] = pair.run([Request([command])])
    assert pair.native == [True]
    fast_event = pair.books[0][2][-1]
    assert fast_event.body["legs"] == [
        {"account": IDS[0], "amount": -250, "bucket": "available"},
        {"account": IDS[1], "amount": 250, "bucket": "available"},
    ]
    assert fast_event.body["refs"] == {"netting_batch_id": "nb-9"}
    assert result == (machine_module.R.ok, False, fast_event.seq, None)
    pair.assert_same_books()


@pytest.mark.parametrize("command", [
    Command("transfer", "t-1", client="client-1", account=IDS[0], to=IDS[1], amount=5_000),
    Command("transfer", "t-1", client="client-1", account=IDS[0], to=IDS[0], amount=5),
    Command("transfer", "t-1", client="client-1", account=IDS[0], to=IDS[1], amount=5,
            metadata={"order": "o-1"}),
    Command("transfer", "t 1", client="client-1", account=IDS[0], to=IDS[1], amount=5),
], ids=["insufficient-funds", "same-account", "metadata", "bad-key"])
def test_what_the_fast_path_hands_back_is_decided_in_python(command: Command):
    pair = Pair(seed=3)
    _opening(pair)
    pair.run([Request([command])])
    assert True not in pair.native  # rejected (no event), or decided by Python
    pair.assert_same_books()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(
    st.one_of(CLIENTS, st.text(max_size=6), st.just(None)),
    st.one_of(KEYS, st.text(max_size=6), st.just("\ud800"), st.integers(), st.just(b"k")),
), max_size=6), max_size=4))
def test_native_idempotency_scopes_match_the_python_ones(requests):
    """The writer's multi-get keys come from C: the same bytes, for the same commands, as
    `idempotency_scope` makes (non-ASCII and lone surrogates go through it)."""
    built = [Request([Command("transfer", key, client) for client, key in request])
             for request in requests]
    fast = StateMachine(LedgerState(LEDGER), native=True).idempotency_scopes(built)
    slow = StateMachine(LedgerState(LEDGER), native=False).idempotency_scopes(built)
    assert fast == slow
