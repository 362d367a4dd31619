"""The per-event hash chain of a shard.

`hash_i = SHA-256(prev_hash || leaf_hash_i)` with `leaf_hash_i = SHA-256(0x00 || bytes_i)`, where
`bytes_i` are the canonical bytes of the event body (which itself carries `prev_hash` as hex and
its `seq`). The leaf hash is the RFC 9162 leaf of the event tree, so the chain and the Merkle
tree commit to exactly the same bytes. `prev_hash` of seq 0 is 32 zero bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from ledger.core import canonical

GENESIS_PREV_HASH = bytes(32)
LEAF_PREFIX = b"\x00"


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + body).digest()


def chain_hash(prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev_hash + hashlib.sha256(LEAF_PREFIX + body).digest()).digest()


class ChainBroken(Exception):
    """The stored log does not hash to the stored chain (tampering, corruption or a gap)."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"hash chain broken at seq {seq}: {reason}")
        self.seq = seq
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One log entry as stored: its seq, canonical body bytes and chain hash."""

    seq: int
    body: bytes
    hash: bytes


def verify_chain(
    events: Iterable[StoredEvent], prev_hash: bytes = GENESIS_PREV_HASH, first_seq: int = 0
) -> tuple[int, bytes]:
    """Check that `events` continue the chain from (`first_seq`, `prev_hash`).

    Every event must have the next seq, carry the previous hash in its body, and hash to its
    stored hash. Returns (number of events checked, last hash); raises `ChainBroken` otherwise.
    """
    expected_seq = first_seq
    count = 0
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
        computed = chain_hash(prev_hash, event.body)
        if computed != event.hash:
            raise ChainBroken(
                event.seq,
                f"stored hash {event.hash.hex()} but body hashes to {computed.hex()}",
            )
        prev_hash = computed
        expected_seq += 1
        count += 1
    return count, prev_hash
