"""Ledger commands: what a client asks the writer to do.

A command is a plain record; it says nothing about whether it is valid. The state machine
validates it against the current state and either turns it into one event or rejects it with a
result code. Field meanings by command type:

| type                  | account            | to / beneficiary        | other              |
|-----------------------|--------------------|-------------------------|--------------------|
| open_account          | -                  | -                       | did, kind, tags,   |
|                       |                    |                         | safeguarding       |
| freeze/unfreeze/close | subject            | -                       |                    |
| mint / burn           | credited / debited | -                       | amount             |
| transfer              | debited (from)     | to: credited            | amount, netting id |
| hold                  | holder             | beneficiary (optional)  | amount, hold_id?,  |
|                       |                    |                         | expires_at?        |
| release               | -                  | beneficiary (optional)  | hold_id, amount?   |
| cancel_hold           | -                  | -                       | hold_id            |
| stake_lock / release  | staker             | -                       | amount, escrow_id  |
|                       |                    |                         | or trial_id        |
| stake_slash           | staker             | to: fee pool (optional) | amount, escrow_id  |
|                       |                    |                         | or trial_id        |
| fee_transfer          | payer              | to: fee pool (optional) | amount             |
| fee_burn              | fee pool (optional)| -                       | amount             |
| promo_mint / burn     | credited / debited | -                       | amount             |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_AMOUNT = 2**63 - 1
"""Largest amount of one command, and largest absolute balance of any bucket (int64)."""


class CommandType(StrEnum):
    open_account = "open_account"
    freeze_account = "freeze_account"
    unfreeze_account = "unfreeze_account"
    close_account = "close_account"
    mint = "mint"
    burn = "burn"
    transfer = "transfer"
    hold = "hold"
    release = "release"
    cancel_hold = "cancel_hold"
    stake_lock = "stake_lock"
    stake_release = "stake_release"
    stake_slash = "stake_slash"
    fee_transfer = "fee_transfer"
    fee_burn = "fee_burn"
    promo_mint = "promo_mint"
    promo_burn = "promo_burn"


COMMAND_TYPES = frozenset(CommandType)


class AccountKind(StrEnum):
    user = "user"
    clearing = "clearing"
    fee_pool = "fee_pool"
    reserve = "reserve"
    system = "system"


class Safeguarding(StrEnum):
    """E-money fund segregation class of an account."""

    customer_funds = "customer_funds"
    own_funds = "own_funds"
    not_applicable = "n/a"


DEFAULT_SAFEGUARDING = {
    AccountKind.user: Safeguarding.customer_funds,
    AccountKind.clearing: Safeguarding.customer_funds,
    AccountKind.fee_pool: Safeguarding.own_funds,
    AccountKind.reserve: Safeguarding.own_funds,
    AccountKind.system: Safeguarding.not_applicable,
}


@dataclass(slots=True)
class Command:
    """One ledger command. `client` scopes the idempotency key (the API client's id)."""

    type: str
    idempotency_key: str | None
    client: str = ""
    account: str | None = None
    to: str | None = None
    beneficiary: str | None = None
    amount: int | None = None
    hold_id: str | None = None
    expires_at: int | None = None
    escrow_id: str | None = None
    trial_id: str | None = None
    netting_batch_id: str | None = None
    did: str | None = None
    kind: str | None = None
    tags: list[str] | None = None
    safeguarding: str | None = None
    metadata: dict[str, Any] | None = field(default=None)

    def request_fields(self) -> list[Any]:
        """The fields that make up the request, in a fixed order, for its fingerprint."""
        return [
            self.type, self.account, self.to, self.beneficiary, self.amount, self.hold_id,
            self.expires_at, self.escrow_id, self.trial_id, self.netting_batch_id, self.did,
            self.kind, self.tags, self.safeguarding, self.metadata,
        ]


@dataclass(slots=True)
class Request:
    """A client's batch of commands. With `atomic`, all of them apply or none does."""

    commands: list[Command]
    atomic: bool = False
