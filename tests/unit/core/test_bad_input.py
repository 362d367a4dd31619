"""Malformed and hostile commands get their own clear code and change nothing.

"Nothing" means no event, and the same accounts, holds, next seq and head hash (`book.rejected`
checks all of it). Schema errors are not recorded, so the corrected command may reuse the key.
Values a JSON client can send must never raise: an exception in the middle of a group would
leave the state applied but unsealed.
"""

from __future__ import annotations

import pytest

from ledger.core.codes import ResultCode
from ledger.core.commands import Request
from ledger.core.state import account_id_for
from tests.unit.core.conftest import NOW, SECOND, Book

R = ResultCode
MAX_AMOUNT = 2**63 - 1
MIN_INT64 = -(2**63)


@pytest.fixture
def alice(book: Book) -> str:
    account = book.open("did:ex:alice")
    book.fund(account, 1_000)
    return account


@pytest.fixture
def bob(book: Book) -> str:
    return book.open("did:ex:bob")


# -- accounts that are not there, or not here -----------------------------------------------


def test_unknown_accounts_are_account_not_found(book: Book, alice: str) -> None:
    nobody = book.id_of("did:ex:nobody")
    for command in (
        book.command("mint", account=nobody, amount=5),
        book.command("transfer", account=alice, to=nobody, amount=5),
        book.command("transfer", account=nobody, to=alice, amount=5),
        book.command("freeze_account", account=nobody),
        book.command("unfreeze_account", account=nobody),
        book.command("close_account", account=nobody),
        book.command("hold", account=alice, amount=5, beneficiary=nobody),
        book.command("fee_transfer", account=alice, to=nobody, amount=5),
        book.command("stake_lock", account="not-an-account-id", amount=5, escrow_id="e-1"),
    ):
        [result] = book.rejected(command)
        assert result.code is R.account_not_found, command


def test_accounts_of_another_ledger_are_ledger_mismatch(book: Book, alice: str) -> None:
    """The USD account of the same DID is a different account, in another shard."""
    alice_in_usd = account_id_for("USD", "did:ex:alice")
    for command in (
        book.command("mint", account=alice_in_usd, amount=5),
        book.command("transfer", account=alice, to=alice_in_usd, amount=5),
        book.command("freeze_account", account=alice_in_usd),
        book.command("unfreeze_account", account=alice_in_usd),
        book.command("close_account", account=alice_in_usd),
        book.command("hold", account=alice, amount=5, beneficiary=alice_in_usd),
        book.command("fee_burn", account=account_id_for("USD", "system:fee-pool"), amount=1),
    ):
        [result] = book.rejected(command)
        assert result.code is R.ledger_mismatch, command


@pytest.mark.parametrize("unknown", ["my_savings_account", "ACC_EUR_0123456789abcdef0123"])
def test_an_id_of_no_ledger_is_account_not_found(book: Book, alice: str, unknown: str) -> None:
    [result] = book.rejected(book.command("transfer", account=alice, to=unknown, amount=5))
    assert result.code is R.account_not_found


# -- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "code"), [
    (0, R.amount_must_be_positive),
    (-1, R.amount_must_be_positive),
    (MIN_INT64, R.amount_must_be_positive),
    (None, R.amount_must_be_positive),
    (2**63, R.amount_exceeds_maximum),
    (2**64, R.amount_exceeds_maximum),
    (10**30, R.amount_exceeds_maximum),
    (1.5, R.amount_must_be_positive),
    (100.0, R.amount_must_be_positive),
    (float("inf"), R.amount_must_be_positive),
    (float("nan"), R.amount_must_be_positive),
    (True, R.amount_must_be_positive),
    (False, R.amount_must_be_positive),
    ("100", R.amount_must_be_positive),
    ([100], R.amount_must_be_positive),
], ids=repr)
def test_bad_amounts_are_rejected(book: Book, alice: str, bob: str, amount, code) -> None:
    [result] = book.rejected(book.command("transfer", account=alice, to=bob, amount=amount))
    assert result.code is code


def test_the_largest_amount_is_accepted(book: Book, bob: str) -> None:
    assert book.do("mint", account=bob, amount=MAX_AMOUNT).ok
    assert book.outstanding() == MAX_AMOUNT


def test_an_optional_amount_is_still_checked_when_given(book: Book, alice: str) -> None:
    assert book.do("hold", account=alice, amount=10, hold_id="h-1").ok
    [result] = book.rejected(book.command("cancel_hold", hold_id="h-1", amount=0))
    assert result.code is R.amount_must_be_positive


# -- command type and idempotency key ----------------------------------------------------------


@pytest.mark.parametrize("ctype", ["teleport", "", "MINT", "mint ", None, 7])
def test_unknown_command_types_are_rejected(book: Book, alice: str, ctype) -> None:
    [result] = book.rejected(book.command(ctype, account=alice, amount=5))
    assert result.code is R.command_type_unknown


def test_an_unhashable_command_type_is_command_type_unknown(book: Book, alice: str) -> None:
    [result] = book.rejected(book.command(["mint"], account=alice, amount=5))
    assert result.code is R.command_type_unknown


@pytest.mark.parametrize(("key", "code"), [
    (None, R.idempotency_key_required),
    ("", R.idempotency_key_required),
    ("k" * 129, R.idempotency_key_invalid),
    ("order 1", R.idempotency_key_invalid),
    ("order\t1", R.idempotency_key_invalid),
    ("order\n1", R.idempotency_key_invalid),
    ("ordér-1", R.idempotency_key_invalid),
    (42, R.idempotency_key_invalid),
    (["order-1"], R.idempotency_key_invalid),
], ids=repr)
def test_bad_idempotency_keys_are_rejected(book: Book, alice: str, key, code) -> None:
    [result] = book.rejected(book.command("burn", key=key, account=alice, amount=5))
    assert result.code is code


def test_the_longest_visible_ascii_key_is_accepted(book: Book, alice: str) -> None:
    key = "".join(chr(c) for c in range(0x21, 0x7F)) + "k" * 34
    assert len(key) == 128
    assert book.submit(book.command("burn", key=key, account=alice, amount=5))[0].ok


# -- account ids and references --------------------------------------------------------------


@pytest.mark.parametrize("account_id", [
    ["acc_eur_0"], 42, {"id": "acc_eur_0"}, True, b"acc_eur_0", "acc_eur_" + "0" * 121,
], ids=repr)
@pytest.mark.parametrize("field", ["account", "to"])
def test_account_ids_must_be_short_strings(book: Book, alice: str, field, account_id) -> None:
    fields = {"account": alice, "to": alice, field: account_id}
    [result] = book.rejected(book.command("transfer", amount=5, **fields))
    assert result.code is R.reference_invalid


@pytest.mark.parametrize("reference", [
    "batch 7", "b" * 129, "bätch", "batch\x00", 7, ["b"],
], ids=repr)
@pytest.mark.parametrize("field", ["netting_batch_id", "escrow_id", "trial_id", "hold_id"])
def test_references_must_be_short_visible_ascii(
    book: Book, alice: str, bob: str, field, reference
) -> None:
    [result] = book.rejected(book.command(
        "transfer", account=alice, to=bob, amount=5, **{field: reference},
    ))
    assert result.code is R.reference_invalid


@pytest.mark.parametrize("field", ["escrow_id", "hold_id"])
def test_an_empty_reference_is_reference_invalid(book: Book, alice: str, field) -> None:
    ctype = "stake_lock" if field == "escrow_id" else "hold"
    [result] = book.rejected(book.command(ctype, account=alice, amount=5, **{field: ""}))
    assert result.code is R.reference_invalid


def test_release_and_cancel_need_a_hold_id(book: Book) -> None:
    for ctype in ("release", "cancel_hold"):
        [result] = book.rejected(book.command(ctype))
        assert result.code is R.reference_required


# -- metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [
    {"rate": 1.5},
    {"rate": 2.0},
    {"address": {"city": "Riga"}},
    {"lines": [1, 2]},
    {f"k{i}": i for i in range(17)},
    {"bad key": 1},
    {"": 1},
    {"k" * 65: 1},
    {"clé": 1},
    {1: "one"},
    {"big": 2**63},
    {"small": MIN_INT64 - 1},
    {"note": "n" * 257},
    [("order", "o-1")],
    "order=o-1",
], ids=repr)
def test_bad_metadata_is_metadata_invalid(book: Book, alice: str, metadata) -> None:
    [result] = book.rejected(book.command("burn", account=alice, amount=5, metadata=metadata))
    assert result.code is R.metadata_invalid


def test_metadata_at_its_limits_is_accepted_and_stored(book: Book, alice: str) -> None:
    metadata = {f"k{i}": i for i in range(12)} | {
        "big": MAX_AMOUNT, "small": MIN_INT64, "note": "ñ" * 256, "flag": None,
    }
    result = book.do("burn", account=alice, amount=5, metadata=metadata)
    assert result.ok
    assert result.event.body["metadata"] == metadata


# -- open_account: did, kind, safeguarding, tags ----------------------------------------------


@pytest.mark.parametrize("did", [
    "did:ex:alice smith", "did:ex:" + "a" * 250, "did:ex:ålice", "did:ex:\x00", None, 7,
    ["did:ex:alice"],
], ids=repr)
def test_bad_dids_are_did_invalid(book: Book, did) -> None:
    [result] = book.rejected(book.command("open_account", did=did))
    assert result.code is R.did_invalid


def test_an_empty_did_is_did_invalid(book: Book) -> None:
    [result] = book.rejected(book.command("open_account", did=""))
    assert result.code is R.did_invalid


@pytest.mark.parametrize("tags", [
    "vip", ["high risk"], [""], ["t" * 65], [f"t{i}" for i in range(17)], [1], ["vip", None],
    {"vip": True},
], ids=repr)
def test_bad_tags_are_tags_invalid(book: Book, tags) -> None:
    [result] = book.rejected(book.command("open_account", did="did:ex:alice", tags=tags))
    assert result.code is R.tags_invalid


@pytest.mark.parametrize(("field", "value", "code"), [
    ("kind", "system", R.account_kind_invalid),
    ("kind", "admin", R.account_kind_invalid),
    ("kind", "", R.account_kind_invalid),
    ("safeguarding", "offshore", R.safeguarding_class_invalid),
    ("safeguarding", "N/A", R.safeguarding_class_invalid),
])
def test_bad_kinds_and_safeguarding_classes_are_rejected(book: Book, field, value, code) -> None:
    [result] = book.rejected(book.command("open_account", did="did:ex:alice", **{field: value}))
    assert result.code is code


@pytest.mark.parametrize(("field", "value", "code"), [
    ("kind", ["user"], R.account_kind_invalid),
    ("safeguarding", {"class": "own_funds"}, R.safeguarding_class_invalid),
])
def test_unhashable_kinds_and_safeguarding_classes_are_rejected(
    book: Book, field, value, code
) -> None:
    [result] = book.rejected(book.command("open_account", did="did:ex:alice", **{field: value}))
    assert result.code is code


# -- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expires_at", [0, -1, 2**63, 1.5e18, True, "tomorrow"], ids=repr)
def test_bad_expiries_are_expiry_invalid(book: Book, alice: str, expires_at) -> None:
    [result] = book.rejected(book.command("hold", account=alice, amount=5, expires_at=expires_at))
    assert result.code is R.expiry_invalid


def test_an_expiry_at_the_writers_clock_is_not_in_the_future(book: Book, alice: str) -> None:
    [result] = book.rejected(book.command("hold", account=alice, amount=5, expires_at=NOW))
    assert result.code is R.expiry_must_be_in_future
    assert book.do("hold", account=alice, amount=5, expires_at=NOW + 1).ok


# -- schema errors are not recorded ----------------------------------------------------------


def test_a_corrected_retry_with_the_same_key_succeeds(book: Book, alice: str, bob: str) -> None:
    for broken in (
        {"amount": 0}, {"amount": 1.5}, {"metadata": {"rate": 0.5}}, {"to": None},
        {"netting_batch_id": "batch 7"},
    ):
        fields = {"account": alice, "to": bob, "amount": 5} | broken
        [result] = book.rejected(book.command("transfer", key="pay-1", **fields))
        assert result.code < R.idempotency_key_reused_with_different_request

    [result] = book.submit(book.command("transfer", key="pay-1", account=alice, to=bob, amount=5))

    assert result.ok and not result.replayed
    assert book.available(bob) == 5


# -- values that must not crash the group ------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"metadata": {"note": "\ud800"}},
    {"to": "\udc00"},
    {"did": 2**64},
    {"tags": [2**70]},
], ids=["surrogate-in-metadata", "surrogate-in-account-id", "huge-int-in-did",
        "huge-int-in-tags"])
def test_an_unencodable_field_is_rejected_without_breaking_the_group(
    book: Book, alice: str, bob: str, fields
) -> None:
    good = book.command("transfer", account=alice, to=bob, amount=5)
    bad = book.command("transfer", **({"account": alice, "to": bob, "amount": 7} | fields))

    outcome = book.execute(Request([good, bad]))

    good_result, bad_result = outcome.results[0]
    assert good_result.ok
    assert not bad_result.ok
    assert [event.seq for event in outcome.events] == [good_result.seq]
    assert book.available(bob) == 5
    assert book.verified_chain() == (book.state.next_seq, book.state.head_hash)


def test_a_hold_cannot_name_its_holder_as_beneficiary(book: Book, alice: str) -> None:
    [result] = book.rejected(book.command(
        "hold", account=alice, amount=5, beneficiary=alice, expires_at=NOW + SECOND,
    ))
    assert result.code is R.accounts_must_be_different
