"""An independent reference model of one ledger shard, written from DESIGN.md sections 3 and 4.

It imports nothing from `ledger`: accounts, holds and idempotency records are plain dicts, the
result codes are their names, and every rule is restated here from the design and from the
command table. The property tests drive it side by side with the state machine and require the
same codes, the same event numbering and the same balances.

Rules, in the order the validator must check them (the order of `ResultCode`):
- schema: type, idempotency key, amount, accounts named, did/kind/safeguarding/tags, account ids
  and references, required references, metadata, expiry; schema errors are not recorded;
- idempotency: a recorded (client, key) returns its first outcome (replayed) for the same request
  and `idempotency_key_reused_with_different_request` for another one;
- business checks: unknown, frozen, closed, foreign accounts (in that order over all accounts of
  the command), account kinds, existence, balances, holds, expiry. `release` and `cancel_hold`
  name no account: the hold is looked up first and names the accounts.
- An atomic request applies all its commands or none; only the failing command's outcome is
  recorded, the others answer `linked_command_failed` (except replays, which keep their
  earlier, final outcome).
- Before a group's requests, every open hold whose expiry is at or before the writer's clock
  expires (one event each) and its amount returns to the holder's available bucket.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

MAX_AMOUNT = 2**63 - 1
MIN_INT64 = -(2**63)
BUCKETS = ("available", "held", "bonded", "fee", "promo")
CLIENT_KINDS = frozenset({"user", "clearing", "fee_pool", "reserve"})
SAFEGUARDING_CLASSES = frozenset({"customer_funds", "own_funds", "n/a"})
TOKEN_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
)

COMMAND_TYPES = frozenset({
    "open_account", "freeze_account", "unfreeze_account", "close_account", "mint", "burn",
    "transfer", "hold", "release", "cancel_hold", "stake_lock", "stake_release", "stake_slash",
    "fee_transfer", "fee_burn", "promo_mint", "promo_burn",
})
TYPES_WITH_AMOUNT = frozenset({
    "mint", "burn", "transfer", "hold", "stake_lock", "stake_release", "stake_slash",
    "fee_transfer", "fee_burn", "promo_mint", "promo_burn",
})
TYPES_WITH_ACCOUNT = TYPES_WITH_AMOUNT - {"fee_burn"} | {
    "freeze_account", "unfreeze_account", "close_account",
}
STAKE_TYPES = frozenset({"stake_lock", "stake_release", "stake_slash"})

SCHEMA_CODES = frozenset({
    "command_type_unknown", "idempotency_key_required", "idempotency_key_invalid",
    "amount_must_be_positive", "amount_exceeds_maximum", "account_required",
    "accounts_must_be_different", "did_invalid", "account_kind_invalid",
    "safeguarding_class_invalid", "tags_invalid", "reference_invalid", "reference_required",
    "metadata_invalid", "expiry_invalid",
})
CONFLICT = "idempotency_key_reused_with_different_request"
LINKED = "linked_command_failed"


@dataclass(frozen=True)
class Outcome:
    code: str
    replayed: bool = False
    seq: int = -1


@dataclass
class ModelAccount:
    kind: str
    status: str = "open"
    balances: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))


@dataclass
class ModelHold:
    account: str
    beneficiary: str | None
    amount: int
    expires_at: int | None
    status: str = "open"


@dataclass
class Books:
    """Everything an atomic request may have to undo."""

    accounts: dict[str, ModelAccount]
    holds: dict[str, ModelHold] = field(default_factory=dict)
    records: dict[tuple[str, str], tuple[Any, str, int]] = field(default_factory=dict)
    next_seq: int = 0


class Rejected(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _frozen(value: Any) -> Any:
    """A hashable, type-exact image of a request field (so 1, True and "1" stay different)."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted((key, _frozen(item)) for key, item in value.items())))
    if isinstance(value, list | tuple):
        return ("list", tuple(_frozen(item) for item in value))
    return (type(value).__name__, value)


def request_of(command: Any) -> Any:
    """What makes two commands the same request: every field but the key and the client."""
    return _frozen([
        command.type, command.account, command.to, command.beneficiary, command.amount,
        command.hold_id, command.expires_at, command.escrow_id, command.trial_id,
        command.netting_batch_id, command.did, command.kind, command.tags,
        command.safeguarding, command.metadata,
    ])


def _visible_ascii(text: str) -> bool:
    return all("!" <= character <= "~" for character in text)


def _is_token(text: Any) -> bool:
    return isinstance(text, str) and 1 <= len(text) <= 64 and set(text) <= TOKEN_CHARACTERS


def _is_reference(value: Any) -> bool:
    return value is None or (
        type(value) is str and 0 < len(value) <= 128 and _visible_ascii(value)
    )


def _valid_metadata(metadata: Any) -> bool:
    if type(metadata) is not dict or len(metadata) > 16:
        return False
    for key, value in metadata.items():
        if not _is_token(key):
            return False
        if value is None or type(value) is bool:
            continue
        if type(value) is int:
            if not MIN_INT64 <= value <= MAX_AMOUNT:
                return False
        elif type(value) is not str or len(value) > 256:
            return False
    return True


def schema_error(c: Any) -> str | None:
    """The first schema rule `c` breaks, or None."""
    if c.type not in COMMAND_TYPES:
        return "command_type_unknown"
    if c.idempotency_key is None or c.idempotency_key == "":
        return "idempotency_key_required"
    key = c.idempotency_key
    if type(key) is not str or len(key) > 128 or not _visible_ascii(key):
        return "idempotency_key_invalid"
    if c.type in TYPES_WITH_AMOUNT or c.amount is not None:
        if type(c.amount) is not int or c.amount <= 0:
            return "amount_must_be_positive"
        if c.amount > MAX_AMOUNT:
            return "amount_exceeds_maximum"
    if c.type in TYPES_WITH_ACCOUNT and c.account is None:
        return "account_required"
    if c.type == "transfer":
        if c.to is None:
            return "account_required"
        if c.to == c.account:
            return "accounts_must_be_different"
    if c.type == "hold" and c.beneficiary is not None and c.beneficiary == c.account:
        return "accounts_must_be_different"
    if c.type == "open_account":
        if type(c.did) is not str or not 0 < len(c.did) <= 256 or not _visible_ascii(c.did):
            return "did_invalid"
        if c.kind is not None and c.kind not in CLIENT_KINDS:
            return "account_kind_invalid"
        if c.safeguarding is not None and c.safeguarding not in SAFEGUARDING_CLASSES:
            return "safeguarding_class_invalid"
        if c.tags is not None and not (
            type(c.tags) is list and len(c.tags) <= 16 and all(_is_token(t) for t in c.tags)
        ):
            return "tags_invalid"
    if not all(map(_is_reference, (c.account, c.to, c.beneficiary, c.hold_id, c.escrow_id,
                                   c.trial_id, c.netting_batch_id))):
        return "reference_invalid"
    if c.type in ("release", "cancel_hold") and c.hold_id is None:
        return "reference_required"
    if c.type in STAKE_TYPES and c.escrow_id is None and c.trial_id is None:
        return "reference_required"
    if c.metadata is not None and not _valid_metadata(c.metadata):
        return "metadata_invalid"
    if c.expires_at is not None and not (
        type(c.expires_at) is int and 0 < c.expires_at <= MAX_AMOUNT
    ):
        return "expiry_invalid"
    return None


class ReferenceLedger:
    """The model of one shard right after genesis (issuance and fee pool open, seq 2 next).

    `account_id` maps a did to its account id in this ledger; `foreign_ids` are account ids
    of other ledgers (the model cannot tell them from their spelling, it is told).
    """

    def __init__(
        self, *, issuance: str, fee_pool: str, account_id: Any, foreign_ids: frozenset[str],
        genesis_ts: int,
    ) -> None:
        self.issuance = issuance
        self.fee_pool = fee_pool
        self.account_id = account_id
        self.foreign_ids = foreign_ids
        self.books = Books(
            accounts={issuance: ModelAccount("system"), fee_pool: ModelAccount("fee_pool")},
            next_seq=2,
        )
        self.last_ts = genesis_ts

    # -- reading ----------------------------------------------------------------------------

    def clock(self, now: int) -> int:
        return max(now, self.last_ts)

    def view(self) -> dict[str, Any]:
        return {
            "accounts": {
                account_id: (a.kind, a.status, tuple(a.balances[b] for b in BUCKETS))
                for account_id, a in self.books.accounts.items()
            },
            "holds": {
                hold_id: (h.account, h.beneficiary, h.amount, h.expires_at, h.status)
                for hold_id, h in self.books.holds.items()
            },
            "next_seq": self.books.next_seq,
        }

    # -- one group ----------------------------------------------------------------------------

    def execute(self, requests: list[Any], now: int) -> list[list[Outcome]]:
        now = self.clock(now)
        seq_before = self.books.next_seq
        for hold in self.books.holds.values():
            if hold.status == "open" and hold.expires_at is not None and hold.expires_at <= now:
                hold.status = "expired"
                self._move(hold.account, "held", hold.account, "available", hold.amount)
                self.books.next_seq += 1
        results = [
            self._atomic(request.commands, now) if request.atomic
            else [self._one(command, now) for command in request.commands]
            for request in requests
        ]
        if self.books.next_seq != seq_before:
            self.last_ts = now
        return results

    def _atomic(self, commands: list[Any], now: int) -> list[Outcome]:
        saved = copy.deepcopy(self.books)
        outcomes = []
        for command in commands:
            outcomes.append(self._one(command, now))
            if outcomes[-1].code != "ok":
                break
        failed = outcomes[-1] if outcomes and outcomes[-1].code != "ok" else None
        if failed is None:
            return outcomes
        self.books = saved
        failing = commands[len(outcomes) - 1]
        if _is_recorded(failed.code) and not failed.replayed:
            self.books.records[(failing.client, failing.idempotency_key)] = (
                request_of(failing), failed.code, -1,
            )
        # A replay reports an earlier, final outcome and stays as it is.
        return [o if o is failed or o.replayed else Outcome(LINKED) for o in outcomes] + [
            Outcome(LINKED) for _ in commands[len(outcomes):]
        ]

    def _one(self, c: Any, now: int) -> Outcome:
        code = schema_error(c)
        if code is not None:
            return Outcome(code)
        scope = (c.client, c.idempotency_key)
        request = request_of(c)
        if scope in self.books.records:
            first_request, first_code, first_seq = self.books.records[scope]
            if first_request != request:
                return Outcome(CONFLICT)
            return Outcome(first_code, replayed=True, seq=first_seq)
        try:
            getattr(self, "_" + c.type)(c, now)
        except Rejected as rejection:
            outcome = Outcome(rejection.code)
        else:
            outcome = Outcome("ok", seq=self.books.next_seq)
            self.books.next_seq += 1
        self.books.records[scope] = (request, outcome.code, outcome.seq)
        return outcome

    # -- shared checks --------------------------------------------------------------------------

    def _usable(self, *ids: str) -> list[ModelAccount]:
        accounts = self.books.accounts
        if any(i not in accounts and i not in self.foreign_ids for i in ids):
            raise Rejected("account_not_found")
        found = [accounts[i] for i in ids if i in accounts]
        if any(a.status == "frozen" for a in found):
            raise Rejected("account_frozen")
        if any(a.status == "closed" for a in found):
            raise Rejected("account_closed")
        if len(found) < len(ids):
            raise Rejected("ledger_mismatch")
        return [accounts[i] for i in ids]

    def _known(self, account_id: str) -> ModelAccount:
        if account_id in self.books.accounts:
            return self.books.accounts[account_id]
        raise Rejected(
            "ledger_mismatch" if account_id in self.foreign_ids else "account_not_found"
        )

    def _movement(
        self, src: str, src_bucket: str, dst: str, dst_bucket: str, amount: int,
        src_kinds: frozenset[str], dst_kinds: frozenset[str],
    ) -> None:
        source, destination = self._usable(src, dst)
        if source.kind not in src_kinds or destination.kind not in dst_kinds:
            raise Rejected("account_kind_not_allowed")
        if source.kind != "system" and source.balances[src_bucket] < amount:
            raise Rejected("insufficient_funds")
        if (
            source.balances[src_bucket] - amount < -MAX_AMOUNT
            or destination.balances[dst_bucket] + amount > MAX_AMOUNT
        ):
            raise Rejected("balance_would_overflow")
        self._move(src, src_bucket, dst, dst_bucket, amount)

    def _move(self, src: str, src_bucket: str, dst: str, dst_bucket: str, amount: int) -> None:
        self.books.accounts[src].balances[src_bucket] -= amount
        self.books.accounts[dst].balances[dst_bucket] += amount

    def _open_hold(self, hold_id: str) -> ModelHold:
        hold = self.books.holds.get(hold_id)
        if hold is None:
            raise Rejected("hold_not_found")
        if hold.status == "expired":
            raise Rejected("hold_expired")
        if hold.status != "open":
            raise Rejected("hold_already_resolved")
        return hold

    # -- one method per command type ------------------------------------------------------------

    def _open_account(self, c: Any, now: int) -> None:
        account_id = self.account_id(c.did)
        if account_id in self.books.accounts:
            raise Rejected("account_already_exists")
        self.books.accounts[account_id] = ModelAccount(c.kind or "user")

    def _freeze_account(self, c: Any, now: int) -> None:
        account = self._known(c.account)
        if account.status == "frozen":
            raise Rejected("account_frozen")
        if account.status == "closed":
            raise Rejected("account_closed")
        if account.kind == "system":
            raise Rejected("account_kind_not_allowed")
        account.status = "frozen"

    def _unfreeze_account(self, c: Any, now: int) -> None:
        account = self._known(c.account)
        if account.status == "closed":
            raise Rejected("account_closed")
        if account.status != "frozen":
            raise Rejected("account_not_frozen")
        account.status = "open"

    def _close_account(self, c: Any, now: int) -> None:
        [account] = self._usable(c.account)
        if account.kind == "system" or c.account == self.fee_pool:
            raise Rejected("account_kind_not_allowed")
        if any(account.balances.values()):
            raise Rejected("account_has_balance")
        account.status = "closed"

    def _mint(self, c: Any, now: int) -> None:
        self._movement(self.issuance, "available", c.account, "available", c.amount,
                       frozenset({"system"}), CLIENT_KINDS)

    def _burn(self, c: Any, now: int) -> None:
        self._movement(c.account, "available", self.issuance, "available", c.amount,
                       CLIENT_KINDS, frozenset({"system"}))

    def _transfer(self, c: Any, now: int) -> None:
        self._movement(c.account, "available", c.to, "available", c.amount,
                       CLIENT_KINDS, CLIENT_KINDS)

    def _promo_mint(self, c: Any, now: int) -> None:
        self._movement(self.issuance, "promo", c.account, "promo", c.amount,
                       frozenset({"system"}), CLIENT_KINDS)

    def _promo_burn(self, c: Any, now: int) -> None:
        self._movement(c.account, "promo", self.issuance, "promo", c.amount,
                       CLIENT_KINDS, frozenset({"system"}))

    def _fee_transfer(self, c: Any, now: int) -> None:
        self._movement(c.account, "available", c.to or self.fee_pool, "fee", c.amount,
                       CLIENT_KINDS, frozenset({"fee_pool"}))

    def _fee_burn(self, c: Any, now: int) -> None:
        self._movement(c.account or self.fee_pool, "fee", self.issuance, "available", c.amount,
                       frozenset({"fee_pool"}), frozenset({"system"}))

    def _stake_lock(self, c: Any, now: int) -> None:
        self._movement(c.account, "available", c.account, "bonded", c.amount,
                       CLIENT_KINDS, CLIENT_KINDS)

    def _stake_release(self, c: Any, now: int) -> None:
        self._movement(c.account, "bonded", c.account, "available", c.amount,
                       CLIENT_KINDS, CLIENT_KINDS)

    def _stake_slash(self, c: Any, now: int) -> None:
        self._movement(c.account, "bonded", c.to or self.fee_pool, "fee", c.amount,
                       CLIENT_KINDS, frozenset({"fee_pool"}))

    def _hold(self, c: Any, now: int) -> None:
        others = [] if c.beneficiary is None else [c.beneficiary]
        parties = self._usable(c.account, *others)
        if any(a.kind not in CLIENT_KINDS for a in parties):
            raise Rejected("account_kind_not_allowed")
        holder = parties[0]
        if holder.balances["available"] < c.amount:
            raise Rejected("insufficient_funds")
        if holder.balances["held"] + c.amount > MAX_AMOUNT:
            raise Rejected("balance_would_overflow")
        if c.hold_id in self.books.holds:
            raise Rejected("hold_id_already_exists")
        if c.expires_at is not None and c.expires_at <= now:
            raise Rejected("expiry_must_be_in_future")
        self._move(c.account, "available", c.account, "held", c.amount)
        self.books.holds[c.hold_id] = ModelHold(c.account, c.beneficiary, c.amount, c.expires_at)

    def _release(self, c: Any, now: int) -> None:
        hold = self._open_hold(c.hold_id)
        if c.beneficiary is not None and hold.beneficiary not in (None, c.beneficiary):
            raise Rejected("beneficiary_mismatch")
        beneficiary_id = c.beneficiary or hold.beneficiary
        if beneficiary_id is None:
            raise Rejected("beneficiary_required")
        _, beneficiary = self._usable(hold.account, beneficiary_id)
        if beneficiary.kind not in CLIENT_KINDS:
            raise Rejected("account_kind_not_allowed")
        captured = hold.amount if c.amount is None else c.amount
        if beneficiary.balances["available"] + captured > MAX_AMOUNT:
            raise Rejected("balance_would_overflow")
        if captured > hold.amount:
            raise Rejected("release_exceeds_hold")
        self.books.accounts[hold.account].balances["held"] -= hold.amount
        self.books.accounts[hold.account].balances["available"] += hold.amount - captured
        beneficiary.balances["available"] += captured
        hold.status = "released"

    def _cancel_hold(self, c: Any, now: int) -> None:
        hold = self._open_hold(c.hold_id)
        self._move(hold.account, "held", hold.account, "available", hold.amount)
        hold.status = "cancelled"


def _is_recorded(code: str) -> bool:
    return code not in SCHEMA_CODES and code not in (CONFLICT, LINKED)
