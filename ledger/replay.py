"""Rebuild a shard's state from its log, check the log's hash chain, and compare states.

Key invariant: `replay` trusts nothing but the stored event bytes and chain hashes. It applies
no event before the chain up to it is verified (`chain.verified`, the auditor's own check), and
it applies the bodies with the same `apply_event` the writer used, so the replayed state equals the
stored current state unless the log or that state is damaged. The nightly replay job reports the
difference with `compare_states`; the writer runs `verify_tail` before it appends again.

Pure Python: no Django, no I/O beyond the event store it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from ledger.core.chain import GENESIS_PREV_HASH, ChainBroken, verified, verify_chain
from ledger.core.state import BUCKETS, Account, Hold, LedgerState, apply_event
from ledger.eventstore.port import EventStore

# Events are verified a chunk at a time, then applied: nothing unverified reaches the state,
# and a chunk bounds the memory a long log needs.
_CHUNK = 4096


def replay(store: EventStore, up_to_seq: int | None = None) -> tuple[LedgerState, int]:
    """A fresh state built from seq 0 through `up_to_seq` (default: the stored head), and the
    number of events applied.

    Raises `ChainBroken` if an event does not continue the chain, or if the log ends before the
    stored head (or before `up_to_seq`, when that is not beyond the head).
    """
    head_seq, head_hash = store.head()
    last_seq = head_seq if up_to_seq is None else max(min(up_to_seq, head_seq), -1)
    state = LedgerState(store.ledger)
    count = 0
    prev_hash = GENESIS_PREV_HASH
    events = store.read(limit=last_seq + 1)
    while chunk := list(islice(events, _CHUNK)):
        for event, body, _ in verified(chunk, prev_hash, count):
            apply_event(state, body)
            prev_hash = event.hash
            count += 1
    _check_reached(count, prev_hash, last_seq, head_hash if last_seq == head_seq else None)
    state.head_hash = prev_hash
    return state, count


def verify_tail(store: EventStore, count: int) -> None:
    """Verify the chain of the last `count` events (requires count >= 0) from the stored hash of
    the event before them up to the stored head. Raises `ChainBroken` on any mismatch."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    head_seq, head_hash = store.head()
    if count == 0 or head_seq < 0:
        return
    first_seq = max(head_seq - count + 1, 0)
    prev_hash = GENESIS_PREV_HASH
    if first_seq > 0:
        before = store.get(first_seq - 1)
        if before is None:
            raise ChainBroken(first_seq - 1, "event missing from the log")
        prev_hash = before.hash
    events = store.read(after_seq=first_seq - 1, limit=head_seq - first_seq + 1)
    checked, last_hash = verify_chain(events, prev_hash, first_seq)
    _check_reached(first_seq + checked, last_hash, head_seq, head_hash)


def _check_reached(
    next_seq: int, last_hash: bytes, last_seq: int, head_hash: bytes | None
) -> None:
    """The verified events must end at `last_seq`, and, when that is the head, with its hash."""
    if next_seq != last_seq + 1:
        raise ChainBroken(next_seq, f"the log ends at seq {next_seq - 1}, expected {last_seq}")
    if head_hash is not None and last_hash != head_hash:
        raise ChainBroken(
            last_seq,
            f"stored head hash {head_hash.hex()} but the log hashes to {last_hash.hex()}",
        )


def compare_states(a: LedgerState, b: LedgerState) -> list[str]:
    """The differences between two states of a shard, one line each, a's value first; empty
    when they are equal. Compares the log position, every account field and balance bucket,
    and every hold."""
    differences = []
    for name in ("ledger", "next_seq", "last_ts"):
        if getattr(a, name) != getattr(b, name):
            differences.append(f"{name}: {getattr(a, name)!r} != {getattr(b, name)!r}")
    if a.head_hash != b.head_hash:
        differences.append(f"head_hash: {a.head_hash.hex()} != {b.head_hash.hex()}")
    differences += _compare_objects("account", _account_fields, a.accounts, b.accounts)
    differences += _compare_objects("hold", Hold.to_dict, a.holds, b.holds)
    return differences


def _account_fields(account: Account) -> dict[str, Any]:
    fields = account.to_dict()
    balances = fields.pop("balances")
    fields.update((f"{bucket} balance", balances[bucket]) for bucket in BUCKETS)
    return fields


def _compare_objects(
    kind: str, fields_of: Callable[[Any], dict[str, Any]], a: dict[str, Any], b: dict[str, Any]
) -> Iterator[str]:
    for object_id in sorted(a.keys() | b.keys()):
        if object_id not in b:
            yield f"{kind} {object_id}: only in a"
        elif object_id not in a:
            yield f"{kind} {object_id}: only in b"
        else:
            fields_a, fields_b = fields_of(a[object_id]), fields_of(b[object_id])
            for name, value in fields_a.items():
                if fields_b[name] != value:
                    yield f"{kind} {object_id}: {name} {value!r} != {fields_b[name]!r}"

