"""`verify_chain` accepts the log the machine writes and names the first seq that breaks.

The chain is recomputed here from DESIGN.md (`hash_i = SHA-256(prev_hash || SHA-256(0x00 ||
bytes_i))`, prev_hash of seq 0 = 32 zero bytes), independently of `chain.verified`.
"""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import canonical
from ledger.core.chain import ChainBroken, StoredEvent, verify_chain
from tests.unit.core.conftest import Book, stored

ZERO_HASH = bytes(32)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rehash(events: list[StoredEvent], start: int, prev_hash: bytes) -> list[StoredEvent]:
    """Chain `events[start:]` afresh from `prev_hash`, as a forger would, keeping the bodies."""
    out = list(events[:start])
    for event in events[start:]:
        body = orjson.loads(event.body)
        body["prev_hash"] = prev_hash.hex()
        data = canonical.encode(body)
        prev_hash = sha256(prev_hash + sha256(b"\x00" + data))
        out.append(StoredEvent(event.seq, data, prev_hash))
    return out


def replaced(events: list[StoredEvent], seq: int, **changes) -> list[StoredEvent]:
    event = events[seq]
    fields = {"seq": event.seq, "body": event.body, "hash": event.hash} | changes
    return [*events[:seq], StoredEvent(**fields), *events[seq + 1:]]


def a_log() -> list[StoredEvent]:
    book = Book()
    alice = book.open("did:ex:alice")
    bob = book.open("did:ex:bob")
    book.fund(alice, 1_000)
    book.do("transfer", account=alice, to=bob, amount=250, metadata={"note": "rent\n€"})
    book.do("hold", account=bob, amount=50, hold_id="h-1")
    book.do("release", hold_id="h-1", beneficiary=alice, amount=20)
    book.do("fee_transfer", account=alice, amount=5)
    return stored(book.events)


LOG = a_log()
HEAD = LOG[-1].hash


def broken_at(events: list[StoredEvent], **kwargs) -> ChainBroken:
    with pytest.raises(ChainBroken) as caught:
        verify_chain(events, **kwargs)
    return caught.value


# -- what a valid log looks like ----------------------------------------------------------------


def test_the_machines_log_is_a_valid_chain() -> None:
    assert verify_chain(LOG) == (len(LOG), HEAD)


def test_the_chain_follows_the_design_formula() -> None:
    prev = ZERO_HASH
    for event in LOG:
        body = orjson.loads(event.body)
        assert body["seq"] == event.seq
        assert body["prev_hash"] == prev.hex()
        assert event.body == canonical.encode(body)
        prev = sha256(prev + sha256(b"\x00" + event.body))
        assert event.hash == prev


def test_a_log_can_be_verified_from_the_middle() -> None:
    assert verify_chain(LOG[4:], prev_hash=LOG[3].hash, first_seq=4) == (len(LOG) - 4, HEAD)


def test_an_empty_log_verifies_to_its_starting_hash() -> None:
    assert verify_chain([]) == (0, ZERO_HASH)
    assert verify_chain([], prev_hash=HEAD, first_seq=len(LOG)) == (0, HEAD)


# -- tampering is found, at the right seq --------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_changing_any_byte_of_a_body_is_caught_at_that_seq(data: st.DataObject) -> None:
    seq = data.draw(st.integers(0, len(LOG) - 1))
    body = bytearray(LOG[seq].body)
    position = data.draw(st.integers(0, len(body) - 1))
    body[position] ^= data.draw(st.integers(1, 255))

    assert broken_at(replaced(LOG, seq, body=bytes(body))).seq == seq


@pytest.mark.parametrize("seq", range(len(LOG)))
def test_a_changed_stored_hash_is_caught_at_that_seq(seq: int) -> None:
    hash_ = bytearray(LOG[seq].hash)
    hash_[0] ^= 1
    error = broken_at(replaced(LOG, seq, hash=bytes(hash_)))
    assert (error.seq, error.reason.startswith("stored hash")) == (seq, True)


def test_two_swapped_events_are_caught_at_the_first_of_them() -> None:
    swapped = [*LOG[:3], LOG[4], LOG[3], *LOG[5:]]
    assert broken_at(swapped).seq == 3


def test_two_swapped_bodies_are_caught_at_the_first_of_them() -> None:
    swapped = replaced(replaced(LOG, 3, body=LOG[4].body), 4, body=LOG[3].body)
    assert broken_at(swapped).seq == 3


def test_a_gap_in_seq_is_caught_at_the_missing_seq() -> None:
    error = broken_at([*LOG[:5], *LOG[6:]])
    assert error.seq == 5
    assert "found seq 6" in error.reason


def test_a_log_that_does_not_start_where_it_should_is_caught() -> None:
    assert broken_at(LOG[1:]).seq == 0
    assert broken_at(LOG[4:], prev_hash=LOG[2].hash, first_seq=4).seq == 4


def test_a_wrong_prev_hash_field_is_caught_at_that_seq() -> None:
    """Body 4 is re-encoded with another prev_hash and stored with the hash of its new bytes."""
    forged = rehash(LOG, 4, prev_hash=sha256(b"another history"))
    error = broken_at(forged)
    assert error.seq == 4
    assert "prev_hash" in error.reason


def test_a_consistently_rehashed_body_is_caught_at_the_next_seq() -> None:
    """A forger who rewrites body 3 and its hash cannot keep body 4's prev_hash."""
    body = orjson.loads(LOG[3].body)
    body["metadata"] = {"forged": True}
    data = canonical.encode(body)
    forged = replaced(LOG, 3, body=data, hash=sha256(LOG[2].hash + sha256(b"\x00" + data)))
    assert broken_at(forged).seq == 4


def test_a_fully_rehashed_forgery_only_changes_the_head() -> None:
    """Everything after the forgery re-chained: only the head hash (the checkpoint) shows it."""
    body = orjson.loads(LOG[3].body)
    body["metadata"] = {"forged": True}
    forged = replaced(LOG, 3, body=canonical.encode(body))
    forged = rehash(forged, 3, prev_hash=LOG[2].hash)
    count, head = verify_chain(forged)
    assert count == len(LOG)
    assert head != HEAD


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"prev_hash": "00"}'])
def test_a_body_that_is_not_an_event_is_caught_at_its_seq(body: bytes) -> None:
    assert broken_at(replaced(LOG, 2, body=body)).seq == 2


@pytest.mark.parametrize("fake_seq", ["true", "1.0"])
def test_a_body_whose_seq_is_not_an_integer_is_caught(fake_seq: str) -> None:
    body = LOG[1].body.replace(b'"seq":1,', b'"seq":' + fake_seq.encode() + b",")
    assert body != LOG[1].body
    hash_1 = sha256(LOG[0].hash + sha256(b"\x00" + body))
    forged = rehash(replaced(LOG, 1, body=body, hash=hash_1), 2, prev_hash=hash_1)
    assert broken_at(forged).seq == 1
