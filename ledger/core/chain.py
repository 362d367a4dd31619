"""The per-event hash chain of a shard.

`hash_i = SHA-256(prev_hash || leaf_hash_i)` with `leaf_hash_i = SHA-256(0x00 || bytes_i)`, where
`bytes_i` are the canonical bytes of the event body (which itself carries `prev_hash` as hex and
its `seq`). The leaf hash is the RFC 9162 leaf of the event tree, so the chain and the Merkle
tree commit to exactly the same bytes. `prev_hash` of seq 0 is 32 zero bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson

from ledger.core import canonical

GENESIS_PREV_HASH = bytes(32)
LEAF_PREFIX = b"\x00"


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + body).digest()


class ChainBroken(Exception):
    """The stored log does not hash to the stored chain (tampering, corruption or a gap)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"hash chain broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class StoredEvent(NamedTuple):
    """One log entry as stored: its seq, canonical body bytes and chain hash.

    A named tuple rather than a frozen dataclass: readers build one per event, and a frozen
    dataclass's constructor cost more than reading the event from RocksDB."""

    seq: int
    body: bytes
    hash: bytes


def verified(
    events: Iterable[StoredEvent], prev_hash: bytes = GENESIS_PREV_HASH, first_seq: int = 0
) -> Iterator[tuple[StoredEvent, dict[str, Any], bytes]]:
    """Yield `(event, parsed body, leaf hash)` for each event of `events` once it is checked to
    continue the chain from (`first_seq`, `prev_hash`); raise `ChainBroken` at the first that
    does not.

    Every event must have the next seq, carry the previous hash in its body, be in canonical
    form and hash to its stored hash. The body and leaf hash come along because checking needs
    them and every caller wants them next (replay applies the body, sealing adds the leaf to the
    event tree): computing them again was a third of sealing.
    """
    expected_seq = first_seq
    sha256 = hashlib.sha256
    for event in events:
        if event.seq != expected_seq:
            raise ChainBroken(expected_seq, f"found seq {event.seq} where {expected_seq} was due")
        try:
            body = orjson.loads(event.body)
        except orjson.JSONDecodeError as exc:
            raise ChainBroken(event.seq, f"body is not valid JSON ({exc})") from None
        if not isinstance(body, dict) or type(body.get("seq")) is not int or (
            body["seq"] != event.seq
        ):
            raise ChainBroken(event.seq, "body does not carry its own seq")
        if canonical.encode(body) != event.body:
            raise ChainBroken(event.seq, "body is not in canonical form")
        if body.get("prev_hash") != prev_hash.hex():
            raise ChainBroken(event.seq, "body's prev_hash is not the previous event's hash")
        leaf = sha256(LEAF_PREFIX + event.body).digest()  # `leaf_hash`, inlined: per event
        computed = sha256(prev_hash + leaf).digest()
        if computed != event.hash:
            raise ChainBroken(
                event.seq,
                f"stored hash {event.hash.hex()} but body hashes to {computed.hex()}",
            )
        yield event, body, leaf
        prev_hash = computed
        expected_seq += 1


def verify_chain(
    events: Iterable[StoredEvent], prev_hash: bytes = GENESIS_PREV_HASH, first_seq: int = 0
) -> tuple[int, bytes]:
    """Check that `events` continue the chain from (`first_seq`, `prev_hash`) (see `verified`).
    Returns (number of events checked, last hash); raises `ChainBroken` otherwise."""
    count = 0
    for event, _, _ in verified(events, prev_hash, first_seq):
        prev_hash = event.hash
        count += 1
    return count, prev_hash
