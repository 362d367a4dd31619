"""The state tree's leaves: how a ledger's events determine each account's leaf (DESIGN 5).

This is the one definition of the leaf encoding; the sealer builds the state tree with it and
the offline verifier recomputes it from an exported log. Standard library only.

Leaf `i` is the `i`-th account opened in the shard (accounts are never deleted). Its bytes are
the canonical JSON (RFC 8785 for these values: sorted keys, no whitespace, integers only) of

    {"buckets": {"available": a, "bonded": b, "fee": f, "held": h, "promo": p},
     "id": "<account id>", "last_seq": <seq of the last event that touched the account>}

and its sum, the account's liability, is `available + held + bonded + fee`, except for the
ledger's system issuance account, whose sum is 0. Promotional credit is excluded: it is issued
from the issuance account's `promo` bucket, not from `available`, and is not redeemable money.
By double entry the sums of all leaves then equal `-issuance.available`, the ledger's
outstanding liabilities, which is what the state root's sum (the checkpoint's `state-sum`)
attests. "Touched" follows the ledger's state machine: the account an event opens, every
account with a leg, and the subject of a freeze, unfreeze or close.

The issuance account is recognised by its id alone: account ids are derived from (ledger, DID)
and name their ledger, so a verifier needs nothing but the leaf to apply the rule.

Invariant: a non-system leaf never has a negative bucket, so no sum is ever negative.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BUCKETS = ("available", "held", "bonded", "fee", "promo")
LIABILITY_BUCKETS = ("available", "held", "bonded", "fee")
ISSUANCE_DID = "system:issuance"
STATUS_EVENTS = frozenset({"account_frozen", "account_unfrozen", "account_closed"})
_LEAF_KEYS = frozenset({"id", "buckets", "last_seq"})
_BUCKET_SET = frozenset(BUCKETS)


class StateLeafError(ValueError):
    """A leaf or an event that breaks the rules above (malformed, negative, unknown account)."""


def canonical_json(value: object) -> bytes:
    """Canonical JSON of a value made of dicts with string keys, lists, str and int."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def account_id_for(ledger: str, did: str) -> str:
    """The id of the account with this DID in this ledger (as the ledger derives it)."""
    digest = hashlib.sha256(f"{ledger}\n{did}".encode()).hexdigest()[:20]
    return f"acc_{ledger.lower()}_{digest}"


def is_issuance_account(account_id: str) -> bool:
    """True for the system issuance account of the ledger the id names."""
    parts = account_id.split("_", 2)
    if len(parts) != 3 or parts[0] != "acc":
        return False
    return account_id == _issuance_id(parts[1])


@functools.lru_cache(maxsize=64)
def _issuance_id(tag: str) -> str:
    # Ledger codes are upper-case letters and digits, so the id's tag maps back exactly. Cached:
    # sealing asks once per changed leaf, and the hash cost more than the rest of the leaf.
    return account_id_for(tag.upper(), ISSUANCE_DID)


@dataclass
class AccountLeaf:
    """One account's state as the state tree commits to it."""

    id: str
    buckets: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BUCKETS, 0))
    last_seq: int = -1

    def encode(self) -> bytes:
        # Sealing encodes every changed leaf: the fixed shape written out directly is several
        # times faster than json.dumps, with the same bytes (a test holds it to canonical_json).
        # An id that JSON would escape (a quote, a backslash, a control character) is quoted
        # by json itself.
        account_id = self.id
        if '"' in account_id or "\\" in account_id or not account_id.isprintable():
            quoted = json.dumps(account_id, ensure_ascii=False)
        else:
            quoted = f'"{account_id}"'
        b = self.buckets
        return (
            f'{{"buckets":{{"available":{b["available"]:d},"bonded":{b["bonded"]:d},'
            f'"fee":{b["fee"]:d},"held":{b["held"]:d},"promo":{b["promo"]:d}}},'
            f'"id":{quoted},"last_seq":{self.last_seq:d}}}'
        ).encode()

    def liability(self) -> int:
        """The leaf's sum; refuses a negative bucket on any account but the issuance one."""
        if is_issuance_account(self.id):
            return 0
        negative = [name for name in BUCKETS if self.buckets[name] < 0]
        if negative:
            raise StateLeafError(f"account {self.id} has negative {', '.join(negative)}")
        return sum(self.buckets[name] for name in LIABILITY_BUCKETS)


def decode_leaf(data: bytes) -> AccountLeaf:
    """Strictly parse leaf bytes: exact keys, integers only, canonical spelling."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise StateLeafError(f"leaf is not JSON: {err}") from err
    if not isinstance(value, dict) or set(value) != _LEAF_KEYS:
        raise StateLeafError(f"leaf must have exactly the keys {sorted(_LEAF_KEYS)}")
    buckets, account_id, last_seq = value["buckets"], value["id"], value["last_seq"]
    if not isinstance(account_id, str) or not account_id:
        raise StateLeafError("leaf id must be a non-empty string")
    if not isinstance(buckets, dict) or set(buckets) != set(BUCKETS):
        raise StateLeafError(f"leaf buckets must be exactly {list(BUCKETS)}")
    if any(type(amount) is not int for amount in buckets.values()):
        raise StateLeafError("leaf buckets must be integers")
    if type(last_seq) is not int or last_seq < 0:
        raise StateLeafError("leaf last_seq must be a non-negative integer")
    leaf = AccountLeaf(account_id, dict(buckets), last_seq)
    if leaf.encode() != data:
        raise StateLeafError("leaf is not in canonical form")
    return leaf


class LedgerStates:
    """Account leaves of one shard, advanced event by event from the event bodies.

    `apply` changes only what the rules above say; `take_dirty` returns the positions changed
    since the previous call, so a caller updates just those leaves of its Merkle-sum tree.
    """

    def __init__(self, leaves: Iterable[AccountLeaf] = ()) -> None:
        self.leaves: list[AccountLeaf] = []
        self.positions: dict[str, int] = {}
        for leaf in leaves:
            self._add(leaf)
        self._dirty: set[int] = set()

    def _add(self, leaf: AccountLeaf) -> int:
        if leaf.id in self.positions:
            raise StateLeafError(f"account {leaf.id} opened twice")
        position = self.positions[leaf.id] = len(self.leaves)
        self.leaves.append(leaf)
        return position

    def _position(self, account_id: object) -> int:
        position = self.positions.get(account_id)  # type: ignore[arg-type]
        if position is None:
            raise StateLeafError(f"event names unknown account {account_id!r}")
        return position

    def apply(self, body: Mapping[str, object]) -> None:
        """Advance the leaves by one event body (a dict parsed from its canonical bytes)."""
        try:
            seq, event_type, details, legs = (
                body["seq"], body["type"], body["details"], body["legs"]
            )
        except (KeyError, TypeError) as err:
            raise StateLeafError(f"event body lacks {err}") from err
        # Sealing runs this once per event: names are bound locally, no helper per leg.
        leaves, positions, dirty = self.leaves, self.positions, self._dirty
        if event_type == "account_opened":
            position = self._add(AccountLeaf(details["account"]))  # type: ignore[index]
            leaves[position].last_seq = seq  # type: ignore[assignment]
            dirty.add(position)
        for leg in legs:  # type: ignore[attr-defined]
            position = positions.get(leg["account"])
            if position is None:
                raise StateLeafError(f"event names unknown account {leg['account']!r}")
            bucket, amount = leg["bucket"], leg["amount"]
            if bucket not in _BUCKET_SET or type(amount) is not int:
                raise StateLeafError(f"event {seq} has a malformed leg {leg!r}")
            leaf = leaves[position]
            leaf.buckets[bucket] += amount
            leaf.last_seq = seq  # type: ignore[assignment]
            dirty.add(position)
        if event_type in STATUS_EVENTS:
            position = self._position(details["account"])  # type: ignore[index]
            leaves[position].last_seq = seq  # type: ignore[assignment]
            dirty.add(position)

    def take_dirty(self) -> list[int]:
        """Positions changed since the last call, ascending."""
        dirty, self._dirty = sorted(self._dirty), set()
        return dirty

    def leaf(self, position: int) -> tuple[bytes, int]:
        """(leaf bytes, leaf sum) of the account at `position`."""
        leaf = self.leaves[position]
        return leaf.encode(), leaf.liability()
