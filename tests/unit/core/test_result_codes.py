"""One row per result code, in the enum's declaration order, each in its minimal situation.

Every row arranges a shard (in earlier groups), then submits one request whose first command
must get the row's code. Except for `ok`, the request changes nothing: no event, the same
accounts, holds, log position and head hash. Business outcomes and `ok` are recorded under the
idempotency key; schema errors, conflicts and linked failures are not.
The precedence tests below give a command that breaks two rules and expect the earlier code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from ledger.core.codes import ResultCode
from ledger.core.commands import Request
from ledger.core.machine import idempotency_scope
from ledger.core.state import account_id_for
from tests.unit.core.conftest import NOW, SECOND, Book

R = ResultCode
MAX_AMOUNT = 2**63 - 1


@dataclass(frozen=True)
class Row:
    code: ResultCode
    arrange: Callable[[Book], Request]


def alice_and_bob(book: Book, alice_funds: int = 0) -> tuple[str, str]:
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    if alice_funds:
        book.fund(alice, alice_funds)
    return alice, bob


def one(book: Book, type: str, **fields) -> Request:
    return Request([book.command(type, **fields)])


def _ok(book: Book) -> Request:
    alice, _ = alice_and_bob(book)
    return one(book, "mint", account=alice, amount=100)


def _linked_command_failed(book: Book) -> Request:
    alice, bob = alice_and_bob(book, alice_funds=10)
    return Request([
        book.command("transfer", account=alice, to=bob, amount=10),
        book.command("transfer", account=alice, to=bob, amount=1),
    ], atomic=True)


def _idempotency_key_reused_with_different_request(book: Book) -> Request:
    alice, _ = alice_and_bob(book)
    assert book.submit(book.command("mint", key="order-1", account=alice, amount=5))[0].ok
    return Request([book.command("mint", key="order-1", account=alice, amount=6)])


def _account_frozen(book: Book) -> Request:
    alice, _ = alice_and_bob(book)
    assert book.do("freeze_account", account=alice).ok
    return one(book, "mint", account=alice, amount=5)


def _account_closed(book: Book) -> Request:
    alice, _ = alice_and_bob(book)
    assert book.do("close_account", account=alice).ok
    return one(book, "mint", account=alice, amount=5)


def _balance_would_overflow(book: Book) -> Request:
    alice, _ = alice_and_bob(book, alice_funds=MAX_AMOUNT)
    return one(book, "mint", account=alice, amount=1)


def _hold_already_resolved(book: Book) -> Request:
    alice, _ = alice_and_bob(book, alice_funds=50)
    assert book.do("hold", account=alice, amount=20, hold_id="h-1").ok
    assert book.do("cancel_hold", hold_id="h-1").ok
    return one(book, "cancel_hold", hold_id="h-1")


def _hold_expired(book: Book) -> Request:
    alice, bob = alice_and_bob(book, alice_funds=50)
    assert book.do("hold", account=alice, amount=20, hold_id="h-1",
                   expires_at=NOW + 10 * SECOND).ok
    [expiry] = book.execute(now=NOW + 11 * SECOND).events
    assert expiry.body["type"] == "hold_expired"
    return one(book, "release", hold_id="h-1", beneficiary=bob)


def _hold_id_already_exists(book: Book) -> Request:
    alice, _ = alice_and_bob(book, alice_funds=50)
    assert book.do("hold", account=alice, amount=20, hold_id="h-1").ok
    return one(book, "hold", account=alice, amount=20, hold_id="h-1")


def _with_hold(book: Book, beneficiary: bool) -> tuple[str, str]:
    alice, bob = alice_and_bob(book, alice_funds=50)
    assert book.do("hold", account=alice, amount=20, hold_id="h-1",
                   beneficiary=bob if beneficiary else None).ok
    return alice, bob


def _beneficiary_mismatch(book: Book) -> Request:
    _with_hold(book, beneficiary=True)
    carol = book.open("did:ex:carol")
    return one(book, "release", hold_id="h-1", beneficiary=carol)


ROWS = [
    Row(R.ok, _ok),
    Row(R.linked_command_failed, _linked_command_failed),
    Row(R.command_type_unknown, lambda book: one(book, "teleport", amount=5)),
    Row(R.idempotency_key_required, lambda book: Request([
        book.command("mint", key=None, account=alice_and_bob(book)[0], amount=5),
    ])),
    Row(R.idempotency_key_invalid, lambda book: Request([
        book.command("mint", key="order 1", account=alice_and_bob(book)[0], amount=5),
    ])),
    Row(R.amount_must_be_positive,
        lambda book: one(book, "mint", account=alice_and_bob(book)[0], amount=0)),
    Row(R.amount_exceeds_maximum,
        lambda book: one(book, "mint", account=alice_and_bob(book)[0], amount=2**63)),
    Row(R.account_required, lambda book: one(book, "mint", amount=5)),
    Row(R.accounts_must_be_different, lambda book: one(
        book, "transfer", account=alice_and_bob(book, 10)[0],
        to=book.id_of("did:ex:alice"), amount=5,
    )),
    Row(R.did_invalid, lambda book: one(book, "open_account", did="did ex alice")),
    Row(R.account_kind_invalid,
        lambda book: one(book, "open_account", did="did:ex:alice", kind="system")),
    Row(R.safeguarding_class_invalid,
        lambda book: one(book, "open_account", did="did:ex:alice", safeguarding="offshore")),
    Row(R.tags_invalid,
        lambda book: one(book, "open_account", did="did:ex:alice", tags=["high risk"])),
    Row(R.reference_invalid, lambda book: one(
        book, "transfer", account=alice_and_bob(book, 10)[0], to=book.id_of("did:ex:bob"),
        amount=5, netting_batch_id="batch 7",
    )),
    Row(R.reference_required, lambda book: one(
        book, "stake_lock", account=alice_and_bob(book, 10)[0], amount=5,
    )),
    Row(R.metadata_invalid, lambda book: one(
        book, "mint", account=alice_and_bob(book)[0], amount=5, metadata={"rate": 1.5},
    )),
    Row(R.expiry_invalid, lambda book: one(
        book, "hold", account=alice_and_bob(book, 10)[0], amount=5, expires_at=0,
    )),
    Row(R.idempotency_key_reused_with_different_request,
        _idempotency_key_reused_with_different_request),
    Row(R.account_not_found,
        lambda book: one(book, "mint", account=book.id_of("did:ex:nobody"), amount=5)),
    Row(R.account_frozen, _account_frozen),
    Row(R.account_closed, _account_closed),
    Row(R.ledger_mismatch, lambda book: one(
        book, "mint", account=account_id_for("USD", "did:ex:alice"), amount=5,
    )),
    Row(R.account_kind_not_allowed, lambda book: one(
        book, "transfer", account=book.issuance, to=alice_and_bob(book)[0], amount=5,
    )),
    Row(R.account_already_exists, lambda book: (
        alice_and_bob(book), one(book, "open_account", did="did:ex:alice"),
    )[1]),
    Row(R.account_not_frozen,
        lambda book: one(book, "unfreeze_account", account=alice_and_bob(book)[0])),
    Row(R.account_has_balance,
        lambda book: one(book, "close_account", account=alice_and_bob(book, 1)[0])),
    Row(R.insufficient_funds, lambda book: one(
        book, "transfer", account=alice_and_bob(book, 10)[0], to=book.id_of("did:ex:bob"),
        amount=11,
    )),
    Row(R.balance_would_overflow, _balance_would_overflow),
    Row(R.hold_not_found, lambda book: one(book, "cancel_hold", hold_id="h-404")),
    Row(R.hold_already_resolved, _hold_already_resolved),
    Row(R.hold_expired, _hold_expired),
    Row(R.hold_id_already_exists, _hold_id_already_exists),
    Row(R.release_exceeds_hold, lambda book: (
        _with_hold(book, beneficiary=True), one(book, "release", hold_id="h-1", amount=21),
    )[1]),
    Row(R.beneficiary_mismatch, _beneficiary_mismatch),
    Row(R.beneficiary_required, lambda book: (
        _with_hold(book, beneficiary=False), one(book, "release", hold_id="h-1"),
    )[1]),
    Row(R.expiry_must_be_in_future, lambda book: one(
        book, "hold", account=alice_and_bob(book, 10)[0], amount=5, expires_at=NOW,
    )),
]

SCHEMA_ERRORS_END = R.idempotency_key_reused_with_different_request


def test_the_table_has_one_row_per_code_in_declaration_order() -> None:
    assert [row.code for row in ROWS] == list(ResultCode)


@pytest.mark.parametrize("row", ROWS, ids=[row.code.name for row in ROWS])
def test_each_code_is_returned_in_its_minimal_situation(book: Book, row: Row) -> None:
    request = row.arrange(book)
    command = request.commands[0]
    before = book.picture()

    outcome = book.execute(request)

    result = outcome.results[0][0]
    assert result.code is row.code
    assert not result.replayed
    if row.code is R.ok:
        assert len(outcome.events) == 1
        assert book.picture() != before
    else:
        assert outcome.events == []
        assert book.picture() == before
    recorded = row.code is R.ok or row.code > SCHEMA_ERRORS_END
    if command.idempotency_key:
        scope = idempotency_scope(command.client, command.idempotency_key)
        assert (scope in outcome.records) == recorded


def test_a_recorded_rejection_is_returned_again_even_after_the_state_has_moved_on(
    book: Book,
) -> None:
    alice, bob = alice_and_bob(book, alice_funds=10)
    payment = book.command("transfer", key="pay-1", account=alice, to=bob, amount=25)
    assert book.submit(payment)[0].code is R.insufficient_funds
    book.fund(alice, 100)

    [again] = book.rejected(payment)

    assert (again.code, again.replayed) == (R.insufficient_funds, True)


# -- precedence: a command that breaks two rules gets the earlier code ----------------------


def test_zero_amount_to_an_unknown_account_is_amount_must_be_positive(book: Book) -> None:
    [result] = book.rejected(book.command("mint", account=book.id_of("did:ex:nobody"), amount=0))
    assert result.code is R.amount_must_be_positive


def test_frozen_and_insufficient_is_account_frozen(book: Book) -> None:
    alice, bob = alice_and_bob(book, alice_funds=10)
    assert book.do("freeze_account", account=alice).ok
    [result] = book.rejected(book.command("transfer", account=alice, to=bob, amount=500))
    assert result.code is R.account_frozen


@pytest.mark.parametrize("unknown_first", [True, False])
def test_an_unknown_account_beside_a_foreign_one_is_account_not_found(
    book: Book, unknown_first: bool
) -> None:
    unknown = book.id_of("did:ex:nobody")
    foreign = account_id_for("USD", "did:ex:bob")
    source, target = (unknown, foreign) if unknown_first else (foreign, unknown)
    [result] = book.rejected(book.command("transfer", account=source, to=target, amount=5))
    assert result.code is R.account_not_found


def test_a_frozen_account_beside_a_foreign_one_is_account_frozen(book: Book) -> None:
    alice, _ = alice_and_bob(book, alice_funds=10)
    assert book.do("freeze_account", account=alice).ok
    foreign = account_id_for("USD", "did:ex:bob")
    [result] = book.rejected(book.command("transfer", account=alice, to=foreign, amount=5))
    assert result.code is R.account_frozen


def test_frozen_comes_before_closed(book: Book) -> None:
    alice, bob = alice_and_bob(book)
    assert book.do("close_account", account=bob).ok
    assert book.do("freeze_account", account=alice).ok
    [result] = book.rejected(book.command("transfer", account=bob, to=alice, amount=5))
    assert result.code is R.account_frozen


def test_closed_and_insufficient_is_account_closed(book: Book) -> None:
    alice, bob = alice_and_bob(book)
    assert book.do("close_account", account=alice).ok
    [result] = book.rejected(book.command("transfer", account=alice, to=bob, amount=5))
    assert result.code is R.account_closed


def test_wrong_kind_and_insufficient_is_account_kind_not_allowed(book: Book) -> None:
    alice, _ = alice_and_bob(book)
    [result] = book.rejected(book.command("fee_transfer", account=alice, to=alice, amount=5))
    assert result.code is R.account_kind_not_allowed


def test_insufficient_funds_comes_before_a_taken_hold_id_and_a_past_expiry(book: Book) -> None:
    alice, _ = alice_and_bob(book, alice_funds=10)
    assert book.do("hold", account=alice, amount=10, hold_id="h-1").ok
    [result] = book.rejected(book.command(
        "hold", account=alice, amount=5, hold_id="h-1", expires_at=NOW - SECOND,
    ))
    assert result.code is R.insufficient_funds


def test_a_taken_hold_id_comes_before_a_past_expiry(book: Book) -> None:
    alice, _ = alice_and_bob(book, alice_funds=10)
    assert book.do("hold", account=alice, amount=5, hold_id="h-1").ok
    [result] = book.rejected(book.command(
        "hold", account=alice, amount=5, hold_id="h-1", expires_at=NOW - SECOND,
    ))
    assert result.code is R.hold_id_already_exists


def test_a_schema_error_comes_before_an_idempotency_conflict(book: Book) -> None:
    alice, _ = alice_and_bob(book)
    assert book.submit(book.command("mint", key="order-1", account=alice, amount=5))[0].ok
    [result] = book.rejected(book.command("mint", key="order-1", account=alice, amount=-5))
    assert result.code is R.amount_must_be_positive


def test_an_idempotency_conflict_comes_before_every_business_rule(book: Book) -> None:
    alice, bob = alice_and_bob(book, alice_funds=10)
    assert book.submit(book.command("transfer", key="pay-1", account=alice, to=bob,
                                    amount=5))[0].ok
    assert book.do("freeze_account", account=alice).ok
    [result] = book.rejected(book.command(
        "transfer", key="pay-1", account=alice, to=account_id_for("USD", "did:ex:x"), amount=50,
    ))
    assert result.code is R.idempotency_key_reused_with_different_request


def test_release_looks_up_the_hold_before_the_accounts(book: Book) -> None:
    """The documented exception: `release` names no account, its hold does."""
    alice, bob = _with_hold(book, beneficiary=True)
    assert book.do("freeze_account", account=bob).ok
    assert book.do("cancel_hold", hold_id="h-1").ok
    [result] = book.rejected(book.command("release", hold_id="h-1"))
    assert result.code is R.hold_already_resolved
    [result] = book.rejected(book.command("release", hold_id="h-404", beneficiary=bob))
    assert result.code is R.hold_not_found


def test_release_reports_overflow_before_exceeding_the_hold(book: Book) -> None:
    alice, bob = alice_and_bob(book, alice_funds=10)
    assert book.do("hold", account=alice, amount=10, hold_id="h-1", beneficiary=bob).ok
    book.fund(bob, MAX_AMOUNT - 10)
    [result] = book.rejected(book.command("release", hold_id="h-1", amount=11))
    assert result.code is R.balance_would_overflow
