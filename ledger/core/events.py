"""Event types and the shape of an event body.

An event body is a dict with exactly these keys (canonical JSON, see `canonical`):

    seq, id, type, ledger, ts, client, idempotency_key, legs, refs, details, metadata, prev_hash

`legs` is a list of {"account", "bucket", "amount"} with signed integer amounts that sum to zero
(double entry). `refs` holds the present references among hold_id, escrow_id, trial_id and
netting_batch_id. `details` holds what a type needs beyond its legs to be replayed (the new
account's did/kind/tags for account_opened, the subject account for freeze/unfreeze/close, the
beneficiary and expiry of a hold, the captured amount of a release). The chain `hash` is not
part of the body; it is stored beside it.
"""

from enum import StrEnum

from ledger.core.commands import CommandType


class EventType(StrEnum):
    account_opened = "account_opened"
    account_frozen = "account_frozen"
    account_unfrozen = "account_unfrozen"
    account_closed = "account_closed"
    mint = "mint"
    burn = "burn"
    transfer = "transfer"
    hold = "hold"
    release = "release"
    hold_cancelled = "hold_cancelled"
    hold_expired = "hold_expired"
    stake_lock = "stake_lock"
    stake_release = "stake_release"
    stake_slash = "stake_slash"
    fee_transfer = "fee_transfer"
    fee_burn = "fee_burn"
    promo_mint = "promo_mint"
    promo_burn = "promo_burn"


EVENT_OF_COMMAND = {
    CommandType.open_account: EventType.account_opened,
    CommandType.freeze_account: EventType.account_frozen,
    CommandType.unfreeze_account: EventType.account_unfrozen,
    CommandType.close_account: EventType.account_closed,
    CommandType.mint: EventType.mint,
    CommandType.burn: EventType.burn,
    CommandType.transfer: EventType.transfer,
    CommandType.hold: EventType.hold,
    CommandType.release: EventType.release,
    CommandType.cancel_hold: EventType.hold_cancelled,
    CommandType.stake_lock: EventType.stake_lock,
    CommandType.stake_release: EventType.stake_release,
    CommandType.stake_slash: EventType.stake_slash,
    CommandType.fee_transfer: EventType.fee_transfer,
    CommandType.fee_burn: EventType.fee_burn,
    CommandType.promo_mint: EventType.promo_mint,
    CommandType.promo_burn: EventType.promo_burn,
}


def event_accounts(body: dict) -> list[str]:
    """The accounts an event touches, in first-seen order (legs, then details.account)."""
    seen: dict[str, None] = {}
    for leg in body["legs"]:
        seen[leg["account"]] = None
    subject = body["details"].get("account")
    if subject is not None:
        seen[subject] = None
    return list(seen)
