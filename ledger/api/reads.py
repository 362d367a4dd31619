"""Reads straight from a shard's event store, so they see every acknowledged write.

The read models in the database are projected asynchronously; the API never answers balance
or status questions from them. The store's head and its per-account snapshot index give the
state at any seq in a couple of key lookups, and an account's first event (account_opened)
gives its immutable facts (DID, kind, tags, safeguarding class).
"""

from __future__ import annotations

from typing import Any

import orjson

from ledger.core.state import BUCKETS, STATUS_OF_CODE
from ledger.eventstore.port import AccountSnapshot, EventStore


def head_seq(store: EventStore) -> int:
    return store.head()[0]


def point_resolve(store: EventStore, *, as_of_seq: int | None, as_of_ns: int | None) -> int:
    """The seq a read is as of: the head, or the given point (never beyond the head)."""
    head = head_seq(store)
    if as_of_seq is not None:
        return min(as_of_seq, head)
    if as_of_ns is not None:
        return min(store.seq_at_time(as_of_ns), head)
    return head


def balance_at(store: EventStore, account_id: str, seq: int) -> dict[str, Any] | None:
    """{"status", "balances"} of an account right after `seq`; None if not open by then."""
    return balance_view(store.account_snapshot_at(account_id, seq))


def balance_now(store: EventStore, account_id: str) -> tuple[dict[str, Any] | None, int]:
    """`balance_at` the head, and the head's seq (`EventStore.account_now`)."""
    snapshot, seq = store.account_now(account_id)
    return balance_view(snapshot), seq


def balance_view(snapshot: AccountSnapshot | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "status": STATUS_OF_CODE[snapshot[0]],
        "balances": dict(zip(BUCKETS, snapshot[1:], strict=True)),
    }


def account_facts(store: EventStore, account_id: str) -> dict[str, Any] | None:
    """The details of the account's account_opened event (its first event), if it exists."""
    seqs = store.account_seqs(account_id, limit=1)
    if not seqs:
        return None
    stored = store.get(seqs[0])
    if stored is None:
        return None
    return orjson.loads(stored.body)["details"]


def account_view(store: EventStore, account_id: str) -> dict[str, Any] | None:
    """The account as `AccountOut`, current as of the head; None if it does not exist."""
    facts = account_facts(store, account_id)
    if facts is None:
        return None
    seq = head_seq(store)
    state = balance_at(store, account_id, seq)
    if state is None:  # opened after the head was read: read again at the new head
        seq = head_seq(store)
        state = balance_at(store, account_id, seq)
    return {
        "id": account_id, "did": facts["did"], "ledger": store.ledger, "kind": facts["kind"],
        "status": state["status"], "tags": facts["tags"],
        "safeguarding": facts["safeguarding"], "balances": state["balances"], "seq": seq,
    }
