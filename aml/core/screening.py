"""The AML rules, evaluated over a ledger's movements in seq order.

Rules (each off while its thresholds are 0):
- `large_transfer`: one movement of at least `large_transfer_minor`.
- `velocity`: an account pays out at least `velocity_count` movements, or at least
  `velocity_amount_minor` in total, within `velocity_window_seconds`.
- `structuring`: an account pays out at least `structuring_count` movements "just under" the
  large-transfer threshold (within `structuring_margin_percent` below it) within
  `structuring_window_seconds`.
- `new_account_inflow`: one credit of at least `new_account_inflow_minor` to an account opened
  less than `new_account_age_seconds` earlier.
- `watchlist`: a movement paying or paid by the account of a watch-listed DID.

Windowed rules fire when the account *reaches* the threshold, not again for every further
movement while it stays above (an alert, not an alert storm); once the window drops below, the
next crossing fires again. Time is the writer's clock in the events (`ts`), so evaluation
depends only on the events and the thresholds: replaying the same events gives the same checks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from aml.core.movements import Movement, movement_of
from ledger.core.state import account_id_for

NS_PER_SECOND = 1_000_000_000


class Rule(StrEnum):
    large_transfer = "large_transfer"
    velocity = "velocity"
    structuring = "structuring"
    new_account_inflow = "new_account_inflow"
    watchlist = "watchlist"


class Outcome(StrEnum):
    hit = "hit"
    passed = "pass"
    off = "off"
    not_applicable = "not_applicable"


@dataclass(frozen=True)
class Thresholds:
    large_transfer_minor: int = 0
    velocity_count: int = 0
    velocity_amount_minor: int = 0
    velocity_window_seconds: int = 3_600
    structuring_margin_percent: int = 10
    structuring_count: int = 0
    structuring_window_seconds: int = 86_400
    new_account_age_seconds: int = 0
    new_account_inflow_minor: int = 0
    version: int = 0
    """Which edit of the thresholds these are (recorded with every check)."""

    @property
    def structuring_floor_minor(self) -> int:
        """Movements from this amount up to (not including) the large-transfer threshold
        count as "just under" it."""
        large = self.large_transfer_minor
        return large - large * self.structuring_margin_percent // 100

    @property
    def longest_window_seconds(self) -> int:
        return max(self.velocity_window_seconds, self.structuring_window_seconds)


@dataclass(frozen=True, slots=True)
class Hit:
    rule: Rule
    account: str | None
    """The account the alert is about (None: a movement without a customer account)."""
    detail: dict
    """What was observed and the thresholds it met (JSON-ready)."""


@dataclass(frozen=True, slots=True)
class Check:
    """The screening of one movement: every rule's outcome, and the hits among them."""

    movement: Movement
    results: dict[str, str]
    hits: tuple[Hit, ...]
    thresholds_version: int

    @property
    def outcome(self) -> str:
        return "alert" if self.hits else "clear"


class _Window:
    """An account's movements within a sliding time window: (ts, amount), oldest first."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: deque[tuple[int, int]] = deque()
        self.total = 0

    def prune(self, horizon_ns: int) -> None:
        """Drop movements at or before `horizon_ns` (outside the window)."""
        items = self.items
        while items and items[0][0] <= horizon_ns:
            self.total -= items.popleft()[1]

    def add(self, ts_ns: int, amount: int) -> None:
        self.items.append((ts_ns, amount))
        self.total += amount


class Screening:
    """The rules over one ledger's movements, with the per-account windows they need.

    `opened_at(account_id)` returns when an account was opened (writer ns), or None if unknown;
    it is asked only about accounts this screening has not seen opened, and only when a credit
    is large enough to matter.
    """

    def __init__(
        self, ledger: str, thresholds: Thresholds, watchlist_dids: Iterable[str] = (),
        *, opened_at: Callable[[str], int | None] = lambda account_id: None,
    ) -> None:
        self.ledger = ledger
        self.opened_at = opened_at
        self._velocity: dict[str, _Window] = {}
        self._structuring: dict[str, _Window] = {}
        self._opened: dict[str, int] = {}
        self.configure(thresholds, watchlist_dids)

    def configure(self, thresholds: Thresholds, watchlist_dids: Iterable[str]) -> None:
        """New thresholds or watch list; the windows carry on."""
        self.thresholds = thresholds
        self.watchlist = {account_id_for(self.ledger, did): did for did in watchlist_dids}

    def check(self, body: dict) -> Check | None:
        """Screen one committed event (bodies must come in seq order); None if the event is
        not a movement."""
        if body["type"] == "account_opened":
            self._opened[body["details"]["account"]] = body["ts"]
            return None
        movement = movement_of(body)
        if movement is None:
            return None
        results: dict[str, str] = {}
        hits: list[Hit] = []
        for rule, evaluate in self._rules:
            outcome, rule_hits = evaluate(self, movement)
            results[rule.value] = outcome.value
            hits.extend(rule_hits)
        return Check(movement, results, tuple(hits), self.thresholds.version)

    def forget_before(self, ts_ns: int) -> None:
        """Drop state no rule can need at `ts_ns` or later (call now and then)."""
        t = self.thresholds
        for windows, seconds in ((self._velocity, t.velocity_window_seconds),
                                 (self._structuring, t.structuring_window_seconds)):
            horizon = ts_ns - seconds * NS_PER_SECOND
            for account in [a for a, w in windows.items() if not w.items or w.items[-1][0]
                            <= horizon]:
                del windows[account]
        horizon = ts_ns - t.new_account_age_seconds * NS_PER_SECOND
        for account in [a for a, opened in self._opened.items() if opened <= horizon]:
            del self._opened[account]

    # -- the rules, in the order they are recorded ------------------------------------------

    def _large_transfer(self, m: Movement) -> tuple[Outcome, list[Hit]]:
        threshold = self.thresholds.large_transfer_minor
        if threshold <= 0:
            return Outcome.off, []
        if m.amount < threshold:
            return Outcome.passed, []
        detail = {"amount_minor": m.amount, "threshold_minor": threshold}
        return Outcome.hit, [Hit(Rule.large_transfer, m.payer or m.payee, detail)]

    def _velocity_rule(self, m: Movement) -> tuple[Outcome, list[Hit]]:
        t = self.thresholds
        if t.velocity_count <= 0 and t.velocity_amount_minor <= 0:
            return Outcome.off, []
        if m.payer is None:
            return Outcome.not_applicable, []
        window = self._window(self._velocity, m.payer, m.ts_ns, t.velocity_window_seconds)
        before_count, before_total = len(window.items), window.total
        window.add(m.ts_ns, m.amount)
        crossed = []
        if t.velocity_count > 0 and before_count < t.velocity_count <= len(window.items):
            crossed.append("count")
        if t.velocity_amount_minor > 0 and before_total < t.velocity_amount_minor <= window.total:
            crossed.append("amount")
        if not crossed:
            return Outcome.passed, []
        detail = {
            "crossed": crossed, "count": len(window.items), "amount_minor": window.total,
            "count_threshold": t.velocity_count,
            "amount_threshold_minor": t.velocity_amount_minor,
            "window_seconds": t.velocity_window_seconds,
        }
        return Outcome.hit, [Hit(Rule.velocity, m.payer, detail)]

    def _structuring_rule(self, m: Movement) -> tuple[Outcome, list[Hit]]:
        t = self.thresholds
        if t.structuring_count <= 0 or t.large_transfer_minor <= 0:
            return Outcome.off, []
        if m.payer is None:
            return Outcome.not_applicable, []
        if not t.structuring_floor_minor <= m.amount < t.large_transfer_minor:
            return Outcome.passed, []
        window = self._window(self._structuring, m.payer, m.ts_ns, t.structuring_window_seconds)
        before = len(window.items)
        window.add(m.ts_ns, m.amount)
        if not before < t.structuring_count <= len(window.items):
            return Outcome.passed, []
        detail = {
            "count": len(window.items), "amount_minor": window.total,
            "count_threshold": t.structuring_count,
            "band_minor": [t.structuring_floor_minor, t.large_transfer_minor - 1],
            "window_seconds": t.structuring_window_seconds,
        }
        return Outcome.hit, [Hit(Rule.structuring, m.payer, detail)]

    def _new_account_inflow(self, m: Movement) -> tuple[Outcome, list[Hit]]:
        t = self.thresholds
        if t.new_account_age_seconds <= 0 or t.new_account_inflow_minor <= 0:
            return Outcome.off, []
        if m.payee is None:
            return Outcome.not_applicable, []
        if m.amount < t.new_account_inflow_minor:
            return Outcome.passed, []
        opened = self._opened.get(m.payee)
        if opened is None:
            opened = self.opened_at(m.payee)
        if opened is None:
            return Outcome.passed, []
        age_ns = m.ts_ns - opened
        if age_ns >= t.new_account_age_seconds * NS_PER_SECOND:
            return Outcome.passed, []
        detail = {
            "amount_minor": m.amount, "threshold_minor": t.new_account_inflow_minor,
            "account_age_seconds": age_ns // NS_PER_SECOND,
            "age_threshold_seconds": t.new_account_age_seconds,
        }
        return Outcome.hit, [Hit(Rule.new_account_inflow, m.payee, detail)]

    def _watchlist_rule(self, m: Movement) -> tuple[Outcome, list[Hit]]:
        if not self.watchlist:
            return Outcome.off, []
        hits = [
            Hit(Rule.watchlist, account, {"did": self.watchlist[account], "role": role})
            for role, account in (("payer", m.payer), ("payee", m.payee))
            if account is not None and account in self.watchlist
        ]
        return (Outcome.hit if hits else Outcome.passed), hits

    @staticmethod
    def _window(windows: dict[str, _Window], account: str, ts_ns: int,
                seconds: int) -> _Window:
        window = windows.get(account)
        if window is None:
            window = windows[account] = _Window()
        window.prune(ts_ns - seconds * NS_PER_SECOND)
        return window

    _rules = (
        (Rule.large_transfer, _large_transfer),
        (Rule.velocity, _velocity_rule),
        (Rule.structuring, _structuring_rule),
        (Rule.new_account_inflow, _new_account_inflow),
        (Rule.watchlist, _watchlist_rule),
    )

