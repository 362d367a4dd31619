"""Worked accounting scenarios, told as stories (after django-hordak's worked examples).

Amounts are euro cents in the EUR shard. `book` starts right after genesis: the issuance account
(kind system, the only account allowed below zero) and the fee pool are open and empty.
"""

from __future__ import annotations

from ledger.core.codes import ResultCode
from ledger.core.commands import Request
from ledger.core.state import account_id_for
from tests.unit.core.conftest import NOW, SECOND, Book

R = ResultCode


def legs(result) -> list[tuple[str, str, int]]:
    return [(leg["account"], leg["bucket"], leg["amount"]) for leg in result.event.body["legs"]]


def test_deposit_then_transfer(book: Book) -> None:
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")

    # Alice deposits 100.00: new e-money is minted, owed by the issuance account.
    deposit = book.do("mint", account=alice, amount=100_00)
    assert legs(deposit) == [(book.issuance, "available", -100_00), (alice, "available", 100_00)]
    assert book.outstanding() == 100_00

    # She pays Bob 25.00.
    payment = book.do("transfer", account=alice, to=bob, amount=25_00)
    assert legs(payment) == [(alice, "available", -25_00), (bob, "available", 25_00)]

    assert book.available(alice) == 75_00
    assert book.available(bob) == 25_00
    assert book.available(book.issuance) == -100_00
    assert book.outstanding() == 100_00  # moving money between customers changes no liability


def test_escrow_hold_with_a_partial_release_to_the_beneficiary(book: Book) -> None:
    buyer = book.open("did:ex:buyer")
    seller = book.open("did:ex:seller")
    book.fund(buyer, 10_00)

    # The buyer's 6.00 are held in escrow for the seller.
    hold = book.do("hold", account=buyer, amount=6_00, hold_id="order-42", beneficiary=seller)
    assert hold.event.body["refs"] == {"hold_id": "order-42"}
    assert book.balances(buyer) == {
        "available": 4_00, "held": 6_00, "bonded": 0, "fee": 0, "promo": 0,
    }

    # Part of the order ships: 4.50 are captured for the seller, 1.50 go back to the buyer.
    release = book.do("release", hold_id="order-42", amount=4_50)

    assert legs(release) == [
        (buyer, "held", -6_00), (seller, "available", 4_50), (buyer, "available", 1_50),
    ]
    assert release.event.body["details"] == {"beneficiary": seller, "captured": 4_50}
    assert book.balances(buyer)["available"] == 5_50
    assert book.balances(buyer)["held"] == 0
    assert book.available(seller) == 4_50
    assert book.state.holds["order-42"].status == "released"
    # A hold resolves once.
    assert book.rejected(book.command("release", hold_id="order-42"))[0].code is (
        R.hold_already_resolved
    )


def test_a_hold_expires_by_the_writers_clock(book: Book) -> None:
    guest = book.open("did:ex:guest")
    hotel = book.open("did:ex:hotel")
    book.fund(guest, 300_00)
    expires_at = NOW + 60 * SECOND
    assert book.do("hold", account=guest, amount=200_00, hold_id="deposit-7",
                   beneficiary=hotel, expires_at=expires_at).ok

    # One nanosecond before the expiry, the hold is still open.
    assert book.execute(now=expires_at - 1).events == []
    assert book.balances(guest)["held"] == 200_00

    # The next group after the expiry starts with hold_expired, then runs its own commands.
    coffee = book.command("transfer", account=guest, to=hotel, amount=4_00)
    outcome = book.execute(Request([coffee]), now=expires_at + SECOND)

    expired, paid = outcome.events
    assert expired.body["type"] == "hold_expired"
    assert expired.body["ts"] == expires_at + SECOND
    assert expired.body["refs"] == {"hold_id": "deposit-7"}
    assert [(leg["bucket"], leg["amount"]) for leg in expired.body["legs"]] == [
        ("held", -200_00), ("available", 200_00),
    ]
    assert paid.body["type"] == "transfer"
    assert book.balances(guest)["available"] == 296_00
    assert book.balances(guest)["held"] == 0

    # Too late for the hotel to capture it.
    [late] = book.rejected(book.command("release", hold_id="deposit-7"))
    assert late.code is R.hold_expired
    assert book.state.holds["deposit-7"].status == "expired"


def test_a_hold_expires_exactly_at_its_expiry(book: Book) -> None:
    alice = book.open("did:ex:alice")
    book.fund(alice, 10)
    assert book.do("hold", account=alice, amount=10, hold_id="h", expires_at=NOW + SECOND).ok

    [expired] = book.execute(now=NOW + SECOND).events

    assert expired.body["type"] == "hold_expired"


def test_stake_lock_release_and_slash(book: Book) -> None:
    tester = book.open("did:ex:tester")
    book.fund(tester, 1_000)

    lock = book.do("stake_lock", account=tester, amount=500, escrow_id="escrow-9",
                   trial_id="trial-3")
    assert legs(lock) == [(tester, "available", -500), (tester, "bonded", 500)]
    assert lock.event.body["refs"] == {"escrow_id": "escrow-9", "trial_id": "trial-3"}

    release = book.do("stake_release", account=tester, amount=200, trial_id="trial-3")
    assert legs(release) == [(tester, "bonded", -200), (tester, "available", 200)]

    # The trial fails: 100 of the remaining stake is slashed into the fee pool's fee bucket.
    slash = book.do("stake_slash", account=tester, amount=100, escrow_id="escrow-9")
    assert legs(slash) == [(tester, "bonded", -100), (book.fee_pool, "fee", 100)]
    assert slash.event.body["refs"] == {"escrow_id": "escrow-9"}

    assert book.balances(tester) == {
        "available": 700, "held": 0, "bonded": 200, "fee": 0, "promo": 0,
    }
    assert book.balances(book.fee_pool)["fee"] == 100
    assert book.outstanding() == 1_000  # slashed money still exists, now as platform income
    # More than is bonded cannot be slashed.
    [too_much] = book.rejected(book.command("stake_slash", account=tester, amount=201,
                                            escrow_id="escrow-9"))
    assert too_much.code is R.insufficient_funds


def test_fee_transfer_then_fee_burn(book: Book) -> None:
    alice = book.open("did:ex:alice")
    book.fund(alice, 1_000)

    fee = book.do("fee_transfer", account=alice, amount=30)
    assert legs(fee) == [(alice, "available", -30), (book.fee_pool, "fee", 30)]
    assert book.outstanding() == 1_000

    # Burning fees retires them: the platform's income leaves circulation.
    burn = book.do("fee_burn", amount=20)
    assert legs(burn) == [(book.fee_pool, "fee", -20), (book.issuance, "available", 20)]

    assert book.balances(book.fee_pool)["fee"] == 10
    assert book.outstanding() == 980
    [too_much] = book.rejected(book.command("fee_burn", amount=11))
    assert too_much.code is R.insufficient_funds


def test_promo_mint_and_burn_use_the_promo_buckets(book: Book) -> None:
    alice = book.open("did:ex:alice")
    book.fund(alice, 1_000)

    promo = book.do("promo_mint", account=alice, amount=500)
    assert legs(promo) == [(book.issuance, "promo", -500), (alice, "promo", 500)]
    # Promotional credit is not e-money: the outstanding liability is unchanged.
    assert book.outstanding() == 1_000
    assert book.balances(book.issuance)["promo"] == -500

    assert book.do("promo_burn", account=alice, amount=200).ok

    assert book.balances(alice) == {
        "available": 1_000, "held": 0, "bonded": 0, "fee": 0, "promo": 300,
    }
    assert book.balances(book.issuance)["promo"] == -300
    assert book.outstanding() == 1_000
    # Promo credit cannot be spent as available money.
    shop = book.open("did:ex:shop")
    [spent] = book.rejected(book.command("transfer", account=alice, to=shop, amount=1_001))
    assert spent.code is R.insufficient_funds


def test_clearing_accounts_settle_across_ledgers_with_a_netting_batch_id() -> None:
    eur, usd = Book("EUR"), Book("USD")
    alice = eur.open("did:ex:alice")
    bob = usd.open("did:ex:bob")
    eur_clearing = eur.open("did:ex:fx-clearing", kind="clearing")
    usd_clearing = usd.open("did:ex:fx-clearing", kind="clearing")
    eur.fund(alice, 100_00)
    usd.fund(usd_clearing, 1_000_00)
    assert eur_clearing != usd_clearing  # one DID, one account per ledger

    # Alice sends 100.00 EUR to Bob, who gets 108.00 USD: two legs in two shards, one batch.
    leg_in = eur.do("transfer", account=alice, to=eur_clearing, amount=100_00,
                    netting_batch_id="fx-2024-06-01")
    leg_out = usd.do("transfer", account=usd_clearing, to=bob, amount=108_00,
                     netting_batch_id="fx-2024-06-01")

    assert leg_in.event.body["refs"] == {"netting_batch_id": "fx-2024-06-01"}
    assert leg_out.event.body["refs"] == {"netting_batch_id": "fx-2024-06-01"}
    assert eur.available(eur_clearing) == 100_00
    assert usd.available(bob) == 108_00
    assert eur.state.accounts[eur_clearing].safeguarding == "customer_funds"
    # A transfer never leaves its ledger.
    [crossing] = eur.rejected(eur.command("transfer", account=alice, to=bob, amount=1))
    assert crossing.code is R.ledger_mismatch


def test_freeze_blocks_debits_and_credits_and_unfreeze_restores_them(book: Book) -> None:
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    book.fund(alice, 100)
    book.fund(bob, 100)

    frozen = book.do("freeze_account", account=bob)
    assert frozen.event.body["details"] == {"account": bob}
    assert frozen.event.body["legs"] == []

    for command in (
        book.command("transfer", account=alice, to=bob, amount=10),
        book.command("transfer", account=bob, to=alice, amount=10),
        book.command("mint", account=bob, amount=10),
        book.command("burn", account=bob, amount=10),
        book.command("hold", account=bob, amount=10),
        book.command("hold", account=alice, amount=10, beneficiary=bob),
        book.command("fee_transfer", account=bob, amount=10),
        book.command("close_account", account=bob),
        book.command("freeze_account", account=bob),
    ):
        assert book.rejected(command)[0].code is R.account_frozen, command.type

    assert book.do("unfreeze_account", account=bob).ok
    assert book.do("transfer", account=alice, to=bob, amount=10).ok
    assert book.do("transfer", account=bob, to=alice, amount=30).ok
    assert (book.available(alice), book.available(bob)) == (120, 80)


def test_closing_requires_every_bucket_to_be_empty(book: Book) -> None:
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    book.fund(alice, 100)
    assert book.do("hold", account=alice, amount=40, hold_id="h-1").ok

    assert book.rejected(book.command("close_account", account=alice))[0].code is (
        R.account_has_balance
    )
    assert book.do("transfer", account=alice, to=bob, amount=60).ok
    # Only the held 40 is left, and it still blocks the close.
    assert book.rejected(book.command("close_account", account=alice))[0].code is (
        R.account_has_balance
    )
    assert book.do("release", hold_id="h-1", beneficiary=bob).ok

    closed = book.do("close_account", account=alice)

    assert closed.ok
    assert book.status(alice) == "closed"
    assert book.rejected(book.command("mint", account=alice, amount=1))[0].code is (
        R.account_closed
    )
    assert book.rejected(book.command("unfreeze_account", account=alice))[0].code is (
        R.account_closed
    )
    assert book.rejected(book.command("close_account", account=book.issuance))[0].code is (
        R.account_kind_not_allowed
    )


def test_the_genesis_fee_pool_cannot_be_closed(book: Book) -> None:
    [result] = book.rejected(book.command("close_account", account=book.fee_pool))
    assert result.code is R.account_kind_not_allowed


def test_an_atomic_batch_whose_last_item_fails_applies_nothing(book: Book) -> None:
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    carol = book.open("did:ex:carol")
    book.fund(alice, 100)
    chain = [
        book.command("transfer", key="c-1", account=alice, to=bob, amount=100),
        book.command("transfer", key="c-2", account=bob, to=carol, amount=60),
        book.command("transfer", key="c-3", account=carol, to=alice, amount=80),
    ]

    first = book.rejected(*chain, atomic=True)

    # Carol would hold only 60: the first failing code is given, the others are linked.
    assert [r.code for r in first] == [
        R.linked_command_failed, R.linked_command_failed, R.insufficient_funds,
    ]

    # Carol is funded, and the client retries the very same chain. Only the failing item's
    # outcome was recorded, and the first outcome of a key is final (machine._execute_atomic):
    # c-3 replays its rejection, so the chain fails again and still applies nothing.
    book.fund(carol, 50)
    retry = book.rejected(*chain, atomic=True)

    assert [(r.code, r.replayed) for r in retry] == [
        (R.linked_command_failed, False), (R.linked_command_failed, False),
        (R.insufficient_funds, True),
    ]

    # With a new key for the last item the chain goes through, c-1 and c-2 unchanged.
    fixed = book.submit(*chain[:2], book.command("transfer", key="c-3b", account=carol,
                                                  to=alice, amount=80), atomic=True)

    assert [r.code for r in fixed] == [R.ok, R.ok, R.ok]
    assert [r.seq for r in fixed] == [fixed[0].seq, fixed[0].seq + 1, fixed[0].seq + 2]
    assert (book.available(alice), book.available(bob), book.available(carol)) == (80, 40, 30)


def test_an_atomic_batch_that_fails_on_a_schema_error_can_be_retried_as_is_once_fixed(
    book: Book,
) -> None:
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    book.fund(alice, 100)
    pay = book.command("transfer", key="p-1", account=alice, to=bob, amount=70)
    broken_fee = book.command("fee_transfer", key="p-2", account=alice, amount=0)

    results = book.rejected(pay, broken_fee, atomic=True)
    assert [r.code for r in results] == [R.linked_command_failed, R.amount_must_be_positive]

    fee = book.command("fee_transfer", key="p-2", account=alice, amount=5)
    assert [r.code for r in book.submit(pay, fee, atomic=True)] == [R.ok, R.ok]
    assert book.available(alice) == 25


def test_the_writers_clock_never_runs_backwards(book: Book) -> None:
    alice = book.open("did:ex:alice")
    first = book.do("mint", account=alice, amount=5)
    outcome = book.execute(Request([book.command("mint", account=alice, amount=5)]),
                           now=NOW - 10 * SECOND)
    assert outcome.events[0].body["ts"] == first.event.body["ts"] == NOW


def test_every_account_gets_a_stable_id_from_its_ledger_and_did(book: Book) -> None:
    opened = book.do("open_account", did="did:ex:alice", kind="reserve", tags=["treasury"])
    assert opened.account == account_id_for("EUR", "did:ex:alice")
    assert opened.event.body["details"] == {
        "account": opened.account, "did": "did:ex:alice", "kind": "reserve",
        "tags": ["treasury"], "safeguarding": "own_funds",
    }
    [again] = book.rejected(book.command("open_account", did="did:ex:alice"))
    assert (again.code, again.account) == (R.account_already_exists, opened.account)


def test_a_hold_rolled_back_with_its_chain_and_placed_again_expires_once(book: Book) -> None:
    """Regression: the rolled-back hold's expiry entry stayed behind, and the hold expired
    twice (fixed in 4ff6be8)."""
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    book.fund(alice, 100)
    hold = book.command("hold", key="h-1", account=alice, amount=40, hold_id="room-1",
                        expires_at=NOW + 60 * SECOND)
    overdraft = book.command("transfer", key="t-1", account=bob, to=alice, amount=1)
    assert book.rejected(hold, overdraft, atomic=True)[1].code is R.insufficient_funds

    # The client drops the failing item and places the hold again (its key was not recorded).
    assert book.submit(hold)[0].ok
    outcome = book.execute(now=NOW + 61 * SECOND)

    assert [e.body["type"] for e in outcome.events] == ["hold_expired"]
    assert book.balances(alice)["held"] == 0
    assert book.balances(alice)["available"] == 100


def test_calls_given_one_outcome_add_to_it(book: Book) -> None:
    """The writer decides a bulk request part by part and writes the parts together: each call
    adds its results, events and records to the outcome it is given."""
    alice = book.open("did:example:alice")
    first, second = (Request([book.command("mint", account=alice, amount=amount)])
                     for amount in (5, 7))
    outcome = book.machine.execute([first], book.now, book.known)
    assert book.machine.execute([second], book.now, book.known, outcome=outcome) is outcome
    assert [[r.ok for r in results] for results in outcome.results] == [[True], [True]]
    assert [e.seq for e in outcome.events] == [r[0].seq for r in outcome.results]
    assert len(outcome.records) == 2
    assert book.available(alice) == 12
