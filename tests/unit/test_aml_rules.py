"""The AML rules (aml.core, no Django): each rule fires at its threshold and stays quiet just
below it; windows slide; a rule fires when an account reaches its threshold, not for every
movement after; every check records every rule's outcome."""

from __future__ import annotations

import dataclasses

import pytest

from aml.core.movements import movement_of
from aml.core.screening import NS_PER_SECOND, Rule, Screening, Thresholds
from ledger.core.state import ISSUANCE_DID, account_id_for

LEDGER = "EUR"
ISSUANCE = account_id_for(LEDGER, ISSUANCE_DID)
ALICE = account_id_for(LEDGER, "did:alice")
BOB = account_id_for(LEDGER, "did:bob")
OFF = Thresholds(velocity_window_seconds=60, structuring_window_seconds=60)


class Log:
    """Event bodies as the writer would commit them (only the fields AML reads)."""

    def __init__(self) -> None:
        self.seq = 0

    def _body(self, kind: str, legs: list, at: float, details: dict | None = None) -> dict:
        self.seq += 1
        return {"seq": self.seq, "id": f"evt_eur_{self.seq:020x}", "type": kind,
                "ledger": LEDGER, "ts": int(at * NS_PER_SECOND), "legs": legs,
                "details": details or {}, "refs": {}}

    def opened(self, account: str, at: float) -> dict:
        return self._body("account_opened", [], at, {"account": account, "did": "x",
                                                     "safeguarding": "customer_funds"})

    def transfer(self, payer: str, payee: str, amount: int, at: float) -> dict:
        return self._body("transfer", [
            {"account": payer, "bucket": "available", "amount": -amount},
            {"account": payee, "bucket": "available", "amount": amount}], at)

    def mint(self, payee: str, amount: int, at: float) -> dict:
        return self._body("mint", [
            {"account": ISSUANCE, "bucket": "available", "amount": -amount},
            {"account": payee, "bucket": "available", "amount": amount}], at)


def screening(watchlist: tuple[str, ...] = (), opened_at=lambda account: None,
              **thresholds) -> Screening:
    return Screening(LEDGER, dataclasses.replace(OFF, **thresholds), watchlist,
                     opened_at=opened_at)


def hits(screen: Screening, bodies: list[dict]) -> list[tuple[Rule, str | None, int]]:
    """(rule, account, seq) of every hit, in order."""
    return [(hit.rule, hit.account, check.movement.seq)
            for body in bodies if (check := screen.check(body)) is not None
            for hit in check.hits]


# -- large transfer --------------------------------------------------------------------------

def test_large_transfer_fires_at_the_threshold() -> None:
    log = Log()
    assert hits(screening(large_transfer_minor=1_000), [log.transfer(ALICE, BOB, 1_000, 0)]) \
        == [(Rule.large_transfer, ALICE, 1)]


def test_large_transfer_stays_quiet_just_below() -> None:
    log = Log()
    assert hits(screening(large_transfer_minor=1_000), [log.transfer(ALICE, BOB, 999, 0)]) == []


def test_a_large_mint_is_about_the_credited_account() -> None:
    log = Log()
    assert hits(screening(large_transfer_minor=1_000), [log.mint(BOB, 5_000, 0)]) \
        == [(Rule.large_transfer, BOB, 1)]


# -- velocity --------------------------------------------------------------------------------

def test_velocity_fires_on_the_nth_payment_within_the_window() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, 1, t) for t in (0, 20, 40, 50)]
    # Fires when the count reaches 3, not again for the 4th while it stays above.
    assert hits(screening(velocity_count=3), bodies) == [(Rule.velocity, ALICE, 3)]


def test_velocity_stays_quiet_one_payment_short() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, 1, t) for t in (0, 20)]
    assert hits(screening(velocity_count=3), bodies) == []


def test_velocity_window_slides() -> None:
    log = Log()
    # The window is the last 60 s: at t=60 the payment of t=0 has left it.
    bodies = [log.transfer(ALICE, BOB, 1, t) for t in (0, 30, 60)]
    assert hits(screening(velocity_count=3), bodies) == []


def test_velocity_fires_again_after_dropping_below() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, 1, t) for t in (0, 1, 2, 100, 101, 102)]
    assert [seq for _, _, seq in hits(screening(velocity_count=3), bodies)] == [3, 6]


def test_velocity_by_amount_fires_at_the_total() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, 600, 0), log.transfer(ALICE, BOB, 400, 10)]
    assert hits(screening(velocity_amount_minor=1_000), bodies) == [(Rule.velocity, ALICE, 2)]


def test_velocity_by_amount_stays_quiet_one_unit_short() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, 600, 0), log.transfer(ALICE, BOB, 399, 10)]
    assert hits(screening(velocity_amount_minor=1_000), bodies) == []


def test_velocity_counts_payments_out_not_in() -> None:
    log = Log()
    bodies = [log.transfer(account, BOB, 1, t) for t, account in enumerate(
        (ALICE, account_id_for(LEDGER, "did:carol"), account_id_for(LEDGER, "did:dave")))]
    assert hits(screening(velocity_count=3), bodies) == []


# -- structuring -----------------------------------------------------------------------------

def test_structuring_fires_on_payments_just_under_the_threshold() -> None:
    log = Log()
    # Threshold 1,000 and a 10% margin: 900..999 is "just under".
    bodies = [log.transfer(ALICE, BOB, amount, t) for t, amount in enumerate((950, 999, 900))]
    assert hits(screening(large_transfer_minor=1_000, structuring_count=3), bodies) \
        == [(Rule.structuring, ALICE, 3)]


def test_structuring_ignores_payments_below_the_band() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, amount, t) for t, amount in enumerate((950, 999, 899))]
    assert hits(screening(large_transfer_minor=1_000, structuring_count=3), bodies) == []


def test_structuring_stays_quiet_one_payment_short() -> None:
    log = Log()
    bodies = [log.transfer(ALICE, BOB, 950, t) for t in (0, 1)]
    assert hits(screening(large_transfer_minor=1_000, structuring_count=3), bodies) == []


# -- large inflow into a new account ---------------------------------------------------------

def test_new_account_inflow_fires_on_a_large_credit_to_a_young_account() -> None:
    log = Log()
    bodies = [log.opened(BOB, 0), log.transfer(ALICE, BOB, 500, 3_599)]
    assert hits(screening(new_account_age_seconds=3_600, new_account_inflow_minor=500), bodies) \
        == [(Rule.new_account_inflow, BOB, 2)]


def test_new_account_inflow_stays_quiet_just_below_the_amount() -> None:
    log = Log()
    bodies = [log.opened(BOB, 0), log.transfer(ALICE, BOB, 499, 10)]
    assert hits(screening(new_account_age_seconds=3_600, new_account_inflow_minor=500),
                bodies) == []


def test_new_account_inflow_stays_quiet_once_the_account_is_old_enough() -> None:
    log = Log()
    bodies = [log.opened(BOB, 0), log.transfer(ALICE, BOB, 500, 3_600)]
    assert hits(screening(new_account_age_seconds=3_600, new_account_inflow_minor=500),
                bodies) == []


def test_new_account_inflow_asks_the_log_about_accounts_opened_earlier() -> None:
    log = Log()
    asked = []

    def opened_at(account: str) -> int:
        asked.append(account)
        return 100 * NS_PER_SECOND

    screen = screening(opened_at=opened_at, new_account_age_seconds=60,
                       new_account_inflow_minor=500)
    assert hits(screen, [log.mint(BOB, 499, 110), log.mint(BOB, 500, 150)]) \
        == [(Rule.new_account_inflow, BOB, 2)]
    assert asked == [BOB]  # only for the credit large enough to matter


# -- watch list ------------------------------------------------------------------------------

@pytest.mark.parametrize(("payer", "payee", "role"), [(ALICE, BOB, "payer"),
                                                       (BOB, ALICE, "payee")])
def test_watchlist_fires_on_either_side(payer: str, payee: str, role: str) -> None:
    log = Log()
    screen = screening(watchlist=("did:alice",))
    check = screen.check(log.transfer(payer, payee, 1, 0))
    assert [(h.rule, h.account, h.detail) for h in check.hits] == [
        (Rule.watchlist, ALICE, {"did": "did:alice", "role": role})]


def test_watchlist_stays_quiet_for_other_dids() -> None:
    log = Log()
    assert hits(screening(watchlist=("did:alice-2",)), [log.transfer(ALICE, BOB, 1, 0)]) == []


# -- the record ------------------------------------------------------------------------------

def test_every_rule_is_recorded_with_its_outcome() -> None:
    log = Log()
    screen = screening(large_transfer_minor=1_000, velocity_count=5, structuring_count=3)
    check = screen.check(log.mint(BOB, 10, 0))
    assert check.results == {"large_transfer": "pass", "velocity": "not_applicable",
                             "structuring": "not_applicable", "new_account_inflow": "off",
                             "watchlist": "off"}
    assert check.outcome == "clear" and check.thresholds_version == 0


def test_new_thresholds_apply_to_the_next_movement_and_keep_the_windows() -> None:
    log = Log()
    screen = screening(velocity_count=3)
    assert hits(screen, [log.transfer(ALICE, BOB, 1, t) for t in (0, 1)]) == []
    screen.configure(dataclasses.replace(OFF, velocity_count=2, version=2), ())
    check = screen.check(log.transfer(ALICE, BOB, 1, 2))
    assert check.thresholds_version == 2 and check.hits == ()  # 2 -> 3 does not cross 2
    assert hits(screen, [log.transfer(BOB, ALICE, 1, t) for t in (3, 4)]) \
        == [(Rule.velocity, BOB, 5)]


def test_the_same_events_give_the_same_checks() -> None:
    log = Log()
    bodies = [log.opened(BOB, 0)] + [log.transfer(ALICE, BOB, 950 + i, i) for i in range(6)]
    thresholds = {"large_transfer_minor": 1_000, "velocity_count": 4, "structuring_count": 3,
                  "new_account_age_seconds": 60, "new_account_inflow_minor": 900}
    one, two = screening(**thresholds), screening(**thresholds)
    checks = [(c.results, c.hits) for b in bodies if (c := one.check(b))]
    assert any(hits for _, hits in checks)
    assert checks == [(c.results, c.hits) for b in bodies if (c := two.check(b))]


def test_movements_of_the_screened_types() -> None:
    log = Log()
    assert movement_of(log.transfer(ALICE, BOB, 5, 0)).accounts == (ALICE, BOB)
    mint = movement_of(log.mint(BOB, 5, 0))
    assert (mint.payer, mint.payee, mint.amount) == (None, BOB, 5)
    release = {"seq": 9, "id": "evt_eur_9", "type": "release", "ledger": LEDGER, "ts": 0,
               "legs": [{"account": ALICE, "bucket": "held", "amount": -10},
                        {"account": BOB, "bucket": "available", "amount": 7},
                        {"account": ALICE, "bucket": "available", "amount": 3}],
               "details": {"beneficiary": BOB, "captured": 7}, "refs": {}}
    moved = movement_of(release)
    assert (moved.payer, moved.payee, moved.amount) == (ALICE, BOB, 7)
    hold = dict(release, type="hold")
    assert movement_of(hold) is None


def test_the_core_imports_no_django() -> None:
    import subprocess
    import sys

    code = ("import sys, aml.core.screening, webhooks.core.signature; "
            "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
