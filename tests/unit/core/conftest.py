"""Fixtures for the pure-core tests: `book`, a fresh EUR shard after genesis, driven the way the
writer drives it (one `execute` per group, the same idempotency records passed every time).

Nothing here touches Django, a database or the disk.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ledger.core import canonical
from ledger.core.chain import StoredEvent, verify_chain
from ledger.core.commands import Command, Request
from ledger.core.machine import Event, GroupOutcome, Result, StateMachine
from ledger.core.state import LedgerState, account_id_for, apply_event

LEDGER = "EUR"
NOW = 1_700_000_000 * 10**9
"""The writer's clock at genesis, in nanoseconds."""
SECOND = 10**9

FRESH = object()
"""Default idempotency key of `Book.command`: a new, unique key."""


def state_picture(state: LedgerState) -> dict[str, Any]:
    """Everything `apply_event` decides, in comparable form (the hash chain is not in it)."""
    return {
        "accounts": {i: a.to_dict() for i, a in state.accounts.items()},
        "holds": {i: h.to_dict() for i, h in state.holds.items()},
        "next_seq": state.next_seq,
        "last_ts": state.last_ts,
    }


def replay(events: list[Event], ledger: str = LEDGER) -> LedgerState:
    """A fresh state rebuilt from the events' stored canonical bytes, from seq 0."""
    state = LedgerState(ledger)
    for event in events:
        apply_event(state, canonical.decode(event.data))
    return state


def stored(events: list[Event]) -> list[StoredEvent]:
    return [StoredEvent(event.seq, event.data, event.hash) for event in events]


class Book:
    """One shard under test: its state, machine, idempotency records, clock and whole log."""

    def __init__(self, ledger: str = LEDGER, now: int = NOW) -> None:
        self.state = LedgerState(ledger)
        self.machine = StateMachine(self.state)
        self.known: dict[bytes, Any] = {}
        self.now = now
        self.events: list[Event] = list(self.machine.genesis(now).events)
        self._keys = itertools.count(1)

    # -- naming things ------------------------------------------------------------------------

    @property
    def issuance(self) -> str:
        return self.state.issuance_id

    @property
    def fee_pool(self) -> str:
        return self.state.fee_pool_id

    def id_of(self, did: str) -> str:
        return account_id_for(self.state.ledger, did)

    def command(self, type: str, *, key: Any = FRESH, client: str = "client-1",
                **fields: Any) -> Command:
        if key is FRESH:
            key = f"key-{next(self._keys)}"
        return Command(type, key, client=client, **fields)

    # -- driving the machine ------------------------------------------------------------------

    def execute(self, *requests: Request, now: int | None = None) -> GroupOutcome:
        """One group commit. `now` moves the writer's clock (it stays put otherwise)."""
        if now is not None:
            self.now = now
        outcome = self.machine.execute(list(requests), self.now, self.known)
        self.events.extend(outcome.events)
        return outcome

    def submit(self, *commands: Command, atomic: bool = False,
               now: int | None = None) -> list[Result]:
        """One request in its own group; returns its results."""
        return self.execute(Request(list(commands), atomic=atomic), now=now).results[0]

    def do(self, type: str, **fields: Any) -> Result:
        """One command in its own request and group."""
        [result] = self.submit(self.command(type, **fields))
        return result

    def rejected(self, *commands: Command, atomic: bool = False) -> list[Result]:
        """Submit commands that must change nothing at all; returns their results."""
        before = self.picture()
        outcome = self.execute(Request(list(commands), atomic=atomic))
        assert outcome.events == []
        assert self.picture() == before
        return outcome.results[0]

    def open(self, did: str, **fields: Any) -> str:
        result = self.do("open_account", did=did, **fields)
        assert result.ok, result
        return result.account

    def fund(self, account: str, amount: int) -> None:
        result = self.do("mint", account=account, amount=amount)
        assert result.ok, result

    # -- reading ------------------------------------------------------------------------------

    def balances(self, account: str) -> dict[str, int]:
        return dict(self.state.accounts[account].balances)

    def available(self, account: str) -> int:
        return self.state.accounts[account].balances["available"]

    def status(self, account: str) -> str:
        return self.state.accounts[account].status

    def outstanding(self) -> int:
        return self.state.outstanding()

    def picture(self) -> dict[str, Any]:
        """The whole shard: accounts, holds, log position and head hash."""
        return {**state_picture(self.state), "head_hash": self.state.head_hash}

    def replayed_picture(self) -> dict[str, Any]:
        return state_picture(replay(self.events, self.state.ledger))

    def verified_chain(self) -> tuple[int, bytes]:
        return verify_chain(stored(self.events))


@pytest.fixture
def book() -> Book:
    return Book()


@pytest.fixture(scope="session")
def make_book() -> type[Book]:
    """The `Book` class itself, for hypothesis tests that need a fresh book per example."""
    return Book
