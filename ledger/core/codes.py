"""Result codes of ledger commands, one enum with stable numbers.

The codes are declared in validation precedence: the validator checks them in this order and
returns the first that applies, so a command that breaks several rules always gets the same
code. Numbers are part of the public contract: a retired code keeps its number and a new code
takes the next free one.

Codes below `FIRST_RECORDED` describe a malformed request (schema errors): they are not stored
under the idempotency key, so the client may fix the request and retry with the same key. From
`idempotency_key_reused_with_different_request` on they are business outcomes: the first
outcome for a key is final and a repeat returns it again.
"""

from enum import IntEnum


class ResultCode(IntEnum):
    ok = 0
    linked_command_failed = 1
    # Malformed requests (not recorded under the idempotency key).
    command_type_unknown = 2
    idempotency_key_required = 3
    idempotency_key_invalid = 4
    amount_must_be_positive = 5
    amount_exceeds_maximum = 6
    account_required = 7
    accounts_must_be_different = 8
    did_invalid = 9
    account_kind_invalid = 10
    safeguarding_class_invalid = 11
    tags_invalid = 12
    reference_invalid = 13
    reference_required = 14
    metadata_invalid = 15
    expiry_invalid = 16
    # Idempotency: checked before the state is consulted, because a replay must return the
    # first outcome even when the state has moved on since.
    idempotency_key_reused_with_different_request = 17
    # Business rejections (recorded: a repeat of the same request returns them again).
    account_not_found = 18
    account_frozen = 19
    account_closed = 20
    ledger_mismatch = 21
    account_kind_not_allowed = 22
    account_already_exists = 23
    account_not_frozen = 24
    account_has_balance = 25
    insufficient_funds = 26
    balance_would_overflow = 27
    hold_not_found = 28
    hold_already_resolved = 29
    hold_expired = 30
    hold_id_already_exists = 31
    release_exceeds_hold = 32
    beneficiary_mismatch = 33
    beneficiary_required = 34
    expiry_must_be_in_future = 35

FIRST_RECORDED = ResultCode.idempotency_key_reused_with_different_request


def is_recorded(code: ResultCode) -> bool:
    """Whether this outcome is final for its idempotency key (see the module docstring)."""
    return code == ResultCode.ok or code > FIRST_RECORDED
