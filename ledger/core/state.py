"""The in-memory state of one ledger shard, and how an event changes it.

`apply_event` is the only way state changes, both when the writer decides a new event and when
a log is replayed from seq 0, so live state and replayed state cannot drift apart.

Invariants kept by the state machine (this module only applies what it is given):
- every bucket of every non-system account is >= 0 and every bucket's absolute value fits int64;
- the legs of every event sum to zero, hence all balances of a shard sum to zero and the
  issuance account's `available` is minus the outstanding liabilities.
"""

from __future__ import annotations

import hashlib
import heapq
from typing import Any

BUCKETS = ("available", "held", "bonded", "fee", "promo")
BUCKET_SET = frozenset(BUCKETS)

ISSUANCE_DID = "system:issuance"
FEE_POOL_DID = "system:fee-pool"


class AccountStatus:
    open = "open"
    frozen = "frozen"
    closed = "closed"


STATUS_CODES = {AccountStatus.open: 0, AccountStatus.frozen: 1, AccountStatus.closed: 2}
STATUS_OF_CODE = {code: status for status, code in STATUS_CODES.items()}


class HoldStatus:
    open = "open"
    released = "released"
    cancelled = "cancelled"
    expired = "expired"


def account_id_for(ledger: str, did: str) -> str:
    """Account ids are derived from (ledger, DID): unique per ledger, stable across replays,
    and they name their ledger so a foreign id is recognised as such."""
    digest = hashlib.sha256(f"{ledger}\n{did}".encode()).hexdigest()[:20]
    return f"acc_{ledger.lower()}_{digest}"


ID_PREFIXES = frozenset({"acc", "evt", "hld"})


def ledger_tag(object_id: str) -> str | None:
    """The lower-case ledger code embedded in an account, hold or event id, if any.

    Only ids of our own shapes (`acc_`, `evt_`, `hld_` + a lower-case ledger code) name a
    ledger; any other string names none, so an unknown id is "not found", not "foreign"."""
    parts = object_id.split("_", 2)
    if len(parts) != 3 or parts[0] not in ID_PREFIXES:
        return None
    tag = parts[1]
    return tag if tag.isascii() and tag.isalnum() and tag.islower() else None


class Account:
    __slots__ = (
        "id", "did", "kind", "status", "tags", "safeguarding", "balances", "last_seq",
        "position",
    )

    def __init__(
        self, id: str, did: str, kind: str, tags: list[str], safeguarding: str, position: int
    ) -> None:
        self.id = id
        self.did = did
        self.kind = kind
        self.status = AccountStatus.open
        self.tags = tags
        self.safeguarding = safeguarding
        self.balances = dict.fromkeys(BUCKETS, 0)
        self.last_seq = -1
        self.position = position

    def snapshot(self) -> tuple[int, int, int, int, int, int]:
        """(status code, available, held, bonded, fee, promo): the account's balance state."""
        b = self.balances
        return (
            STATUS_CODES[self.status], b["available"], b["held"], b["bonded"], b["fee"],
            b["promo"],
        )

    def info(self) -> dict[str, Any]:
        """What never changes after opening (stored once, apart from the balances)."""
        return {
            "id": self.id, "did": self.did, "kind": self.kind, "tags": self.tags,
            "safeguarding": self.safeguarding, "position": self.position,
        }

    @classmethod
    def restore(
        cls, info: dict[str, Any], snapshot: tuple[int, ...], last_seq: int
    ) -> Account:
        """Rebuild an account from its `info()` and a `snapshot()` taken at `last_seq`."""
        account = cls(
            info["id"], info["did"], info["kind"], info["tags"], info["safeguarding"],
            info["position"],
        )
        account.status = STATUS_OF_CODE[snapshot[0]]
        account.balances = dict(zip(BUCKETS, snapshot[1:], strict=True))
        account.last_seq = last_seq
        return account

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "did": self.did, "kind": self.kind, "status": self.status,
            "tags": self.tags, "safeguarding": self.safeguarding,
            "balances": dict(self.balances), "last_seq": self.last_seq,
            "position": self.position,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        account = cls(
            data["id"], data["did"], data["kind"], data["tags"], data["safeguarding"],
            data["position"],
        )
        account.status = data["status"]
        account.balances = dict(data["balances"])
        account.last_seq = data["last_seq"]
        return account


class Hold:
    __slots__ = ("id", "account", "beneficiary", "amount", "expires_at", "status", "seq")

    def __init__(
        self, id: str, account: str, beneficiary: str | None, amount: int,
        expires_at: int | None, seq: int,
    ) -> None:
        self.id = id
        self.account = account
        self.beneficiary = beneficiary
        self.amount = amount
        self.expires_at = expires_at
        self.status = HoldStatus.open
        self.seq = seq

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "account": self.account, "beneficiary": self.beneficiary,
            "amount": self.amount, "expires_at": self.expires_at, "status": self.status,
            "seq": self.seq,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hold:
        hold = cls(
            data["id"], data["account"], data["beneficiary"], data["amount"],
            data["expires_at"], data["seq"],
        )
        hold.status = data["status"]
        return hold


_MISSING = object()


class LedgerState:
    """Accounts and holds of one shard plus the position of its log.

    `next_seq`, `head_hash` and `last_ts` describe the log's tail. While `journal` is a list,
    every change is recorded there so an atomic request can be rolled back (`rollback`; the
    tail itself is saved by `begin`).
    """

    def __init__(self, ledger: str) -> None:
        self.ledger = ledger
        self.tag = ledger.lower()
        self.accounts: dict[str, Account] = {}
        self.holds: dict[str, Hold] = {}
        self.next_seq = 0
        self.head_hash = bytes(32)
        self.last_ts = 0
        self.expiries: list[tuple[int, str]] = []
        self.journal: list[tuple[Any, Any, Any]] | None = None
        self._saved: tuple[int, int, bytes] = (0, 0, self.head_hash)

    @property
    def issuance_id(self) -> str:
        return account_id_for(self.ledger, ISSUANCE_DID)

    @property
    def fee_pool_id(self) -> str:
        return account_id_for(self.ledger, FEE_POOL_DID)

    def add_account(self, account: Account) -> None:
        self.accounts[account.id] = account

    def add_hold(self, hold: Hold) -> None:
        self.holds[hold.id] = hold
        if hold.status == HoldStatus.open and hold.expires_at is not None:
            heapq.heappush(self.expiries, (hold.expires_at, hold.id))

    def due_holds(self, now: int) -> list[Hold]:
        """Open holds whose expiry is at or before `now`, in (expiry, id) order, each once."""
        due: dict[str, Hold] = {}
        while self.expiries and self.expiries[0][0] <= now:
            expires_at, hold_id = heapq.heappop(self.expiries)
            hold = self.holds.get(hold_id)
            # Entries left by resolved holds, or by holds of a rolled-back atomic request
            # (the heap is not journalled), are skipped here; a hold id created again after
            # such a rollback may have two entries, hence the de-duplication.
            if (
                hold is not None and hold.status == HoldStatus.open
                and hold.expires_at == expires_at
            ):
                due[hold_id] = hold
        return list(due.values())

    def outstanding(self) -> int:
        """Customer liabilities: the money minted and not burned."""
        issuance = self.accounts.get(self.issuance_id)
        return -issuance.balances["available"] if issuance else 0

    # -- journalled mutation (for atomic rollback) -------------------------------------------

    def begin(self) -> None:
        self.journal = []
        self._saved = (self.next_seq, self.last_ts, self.head_hash)

    def commit(self) -> None:
        self.journal = None

    def rollback(self) -> None:
        journal = self.journal
        assert journal is not None
        for container, key, old in reversed(journal):
            if isinstance(container, dict):
                if old is _MISSING:
                    del container[key]
                else:
                    container[key] = old
            else:
                setattr(container, key, old)
        self.journal = None
        self.next_seq, self.last_ts, self.head_hash = self._saved

    def set_item(self, container: dict, key: Any, value: Any) -> None:
        if self.journal is not None:
            self.journal.append((container, key, container.get(key, _MISSING)))
        container[key] = value

    def set_attr(self, obj: Any, name: str, value: Any) -> None:
        if self.journal is not None:
            self.journal.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)


def apply_event(state: LedgerState, body: dict[str, Any]) -> list[Account]:
    """Apply one event body to `state`; returns the accounts it touched.

    The body is trusted: it was produced by the state machine or read back from a verified
    log. Legs are applied generically; the type adds account/hold lifecycle changes.
    """
    accounts = state.accounts
    journal = state.journal
    seq = body["seq"]
    etype = body["type"]
    details = body["details"]
    touched: list[Account] = []
    if etype == "account_opened":
        account = Account(
            details["account"], details["did"], details["kind"], details["tags"],
            details["safeguarding"], len(accounts),
        )
        state.set_item(accounts, account.id, account)
        touched.append(account)
    for leg in body["legs"]:
        account = accounts[leg["account"]]
        balances = account.balances
        bucket = leg["bucket"]
        if journal is not None:
            journal.append((balances, bucket, balances[bucket]))
        balances[bucket] += leg["amount"]
        if account not in touched:
            touched.append(account)
    if etype in _STATUS_AFTER:
        account = accounts[details["account"]]
        state.set_attr(account, "status", _STATUS_AFTER[etype])
        touched.append(account)
    elif etype == "hold":
        refs = body["refs"]
        hold = Hold(
            refs["hold_id"], body["legs"][0]["account"], details.get("beneficiary"),
            body["legs"][1]["amount"], details.get("expires_at"), seq,
        )
        state.set_item(state.holds, hold.id, hold)
        if hold.expires_at is not None:
            heapq.heappush(state.expiries, (hold.expires_at, hold.id))
    elif etype in _HOLD_STATUS_AFTER:
        hold = state.holds[body["refs"]["hold_id"]]
        state.set_attr(hold, "status", _HOLD_STATUS_AFTER[etype])
    for account in touched:
        if journal is not None:
            journal.append((account, "last_seq", account.last_seq))
        account.last_seq = seq
    state.next_seq = seq + 1
    state.last_ts = body["ts"]
    return touched


_STATUS_AFTER = {
    "account_frozen": AccountStatus.frozen,
    "account_unfrozen": AccountStatus.open,
    "account_closed": AccountStatus.closed,
}
_HOLD_STATUS_AFTER = {
    "release": HoldStatus.released,
    "hold_cancelled": HoldStatus.cancelled,
    "hold_expired": HoldStatus.expired,
}
