"""Request and response shapes of the ledger API (what OpenAPI documents).

Field names are a public contract. Amounts and balances are integers in minor units; times are
RFC 3339 strings on input and nanoseconds since the epoch (`ts`) in events.
"""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field, Schema
from pydantic import AwareDatetime, StrictBool, StrictInt

from ledger.core.commands import MAX_AMOUNT

MAX_BATCH_COMMANDS = 8_000


class ErrorOut(Schema):
    code: str = Field(description="Stable machine-readable code; branch on this.")
    message: str
    details: dict[str, Any] | None = None


# -- ledgers -------------------------------------------------------------------------------------

class LedgerIn(Schema):
    code: str = Field(description="1-12 upper-case letters or digits, letter first.",
                      examples=["EUR"])
    scale: StrictInt = Field(description="Digits after the decimal point (0-18).", examples=[2])


class LedgerOut(Schema):
    code: str
    scale: int
    created_at: AwareDatetime


class LedgerDetailOut(LedgerOut):
    head_seq: int = Field(description="Seq of the last committed event of the ledger.")
    head_hash: str = Field(description="Hash-chain value after that event (hex).")


# -- accounts and balances -----------------------------------------------------------------------

class AccountIn(Schema):
    ledger: str = Field(examples=["EUR"])
    did: str = Field(description="The owner's DID; unique per ledger.",
                     examples=["did:example:alice"])
    kind: str | None = Field(None, description="user (default), clearing, fee_pool or reserve.")
    tags: list[str] | None = None
    safeguarding: str | None = Field(
        None, description="customer_funds, own_funds or n/a; defaults by kind."
    )
    idempotency_key: str | None = Field(
        None, description="Optional; by default derived from the DID, so a retry is a replay."
    )


class Balances(Schema):
    available: int
    held: int
    bonded: int
    fee: int
    promo: int


class AccountOut(Schema):
    id: str
    did: str
    ledger: str
    kind: str
    status: Literal["open", "frozen", "closed"]
    tags: list[str]
    safeguarding: str
    balances: Balances
    seq: int = Field(description="The ledger seq this state is as of (read-your-writes).")


class AccountBalancesOut(Schema):
    account: str
    ledger: str
    status: Literal["open", "frozen", "closed"]
    balances: Balances
    seq: int = Field(description="The ledger seq the balances are as of: the last event "
                                 "applied (the head, or the as-of point).")


# -- events --------------------------------------------------------------------------------------

class LegOut(Schema):
    account: str
    bucket: Literal["available", "held", "bonded", "fee", "promo"]
    amount: int


class EventOut(Schema):
    """An event: its canonical body fields (what is hashed) plus its chain `hash`."""

    seq: int
    id: str
    type: str
    ledger: str
    ts: int = Field(description="Writer clock, nanoseconds since the Unix epoch.")
    client: str
    idempotency_key: str | None
    legs: list[LegOut]
    refs: dict[str, str]
    details: dict[str, Any]
    metadata: dict[str, Any]
    prev_hash: str
    hash: str


class EventPageOut(Schema):
    events: list[EventOut]
    next_after_seq: int = Field(description="Pass as after_seq to get the next page.")
    has_more: bool = Field(description="Whether the scan stopped before the end of the log.")


# -- commands ------------------------------------------------------------------------------------

CommandTypeName = Literal[
    "transfer", "mint", "burn", "hold", "release", "cancel_hold", "stake_lock",
    "stake_release", "stake_slash", "fee_transfer", "fee_burn", "promo_mint", "promo_burn",
    "freeze_account", "unfreeze_account", "close_account", "open_account",
]


class TransferItemIn(Schema):
    """One ledger command. Malformed fields are rejected per item with a result code."""

    type: CommandTypeName = "transfer"
    idempotency_key: str = Field(description="Required; scoped to your API client.",
                                 max_length=128)
    from_: str | None = Field(None, alias="from", description="Debited account (transfer).")
    to: str | None = None
    account: str | None = Field(None, description="The subject account (other types).")
    beneficiary: str | None = None
    amount: int | None = Field(None, description="Minor units, 1 to 2^63-1.", le=MAX_AMOUNT)
    hold_id: str | None = None
    expires_at: AwareDatetime | int | None = Field(
        None, description="RFC 3339 time, or nanoseconds since the epoch."
    )
    escrow_id: str | None = None
    trial_id: str | None = None
    netting_batch_id: str | None = None
    metadata: dict[str, str | int | bool | None] | None = None
    did: str | None = Field(None, description="open_account only.")
    kind: str | None = Field(None, description="open_account only.")
    tags: list[str] | None = Field(None, description="open_account only.")
    safeguarding: str | None = Field(None, description="open_account only.")


class TransferBatchIn(Schema):
    atomic: StrictBool = Field(False, description="All items apply or none does.")
    ledger: str | None = Field(None, description="Defaults to the ledger the account ids name.")
    transfers: list[TransferItemIn] = Field(max_length=MAX_BATCH_COMMANDS)


class CommandResultOut(Schema):
    index: int
    status: Literal["ok", "rejected"]
    code: str
    replayed: bool
    event: EventOut | None


class TransferBatchOut(Schema):
    results: list[CommandResultOut]


# -- holds ---------------------------------------------------------------------------------------

class HoldIn(Schema):
    account: str
    amount: StrictInt
    idempotency_key: str
    beneficiary: str | None = None
    hold_id: str | None = None
    expires_at: AwareDatetime | None = None
    metadata: dict[str, str | int | bool | None] | None = None


class HoldReleaseIn(Schema):
    idempotency_key: str
    amount: StrictInt | None = Field(None, description="Captured amount; default the whole "
                                                       "hold, the rest returns to the holder.")
    beneficiary: str | None = None
    ledger: str | None = Field(None, description="Needed only if the hold id names no ledger.")
    metadata: dict[str, str | int | bool | None] | None = None


class HoldCancelIn(Schema):
    idempotency_key: str
    ledger: str | None = Field(None, description="Needed only if the hold id names no ledger.")
    metadata: dict[str, str | int | bool | None] | None = None


class HoldOut(Schema):
    id: str
    account: str
    amount: int
    status: Literal["open", "released", "cancelled"]
    beneficiary: str | None = None
    captured: int | None = None
    expires_at: int | None = None


class HoldCommandOut(Schema):
    hold: HoldOut
    replayed: bool
    event: EventOut
