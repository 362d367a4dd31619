"""`ledger._projection.hset`: the published balances' HSET, packed for the wire in C.

hiredis, the packer it replaced, is the reference: both must give the same bytes for the same
fields, each account once with its latest snapshot."""

from __future__ import annotations

import random

import hiredis
import pytest
from ledger._projection import configure, hset

from ledger.core.machine import Event

configure(event=Event)

HEAD_FIELD = b"\x00head"


def event(seq: int, *pairs: tuple[str, bytes]) -> Event:
    return Event(seq, "transfer", None, b"", b"", list(pairs))


def reference(key: bytes, groups: list[list[Event]], head: int) -> bytes:
    latest = {}  # each account once, at its first place, with its last snapshot
    for events in groups:
        for e in events:
            latest.update(e.snapshots)
    fields = [part for pair in latest.items() for part in pair]
    return hiredis.pack_command((b"HSET", key, *fields, HEAD_FIELD, head))


def test_packs_what_hiredis_packs() -> None:
    rng = random.Random(7)
    accounts = [f"acc_eur_{rng.getrandbits(80):020x}" for _ in range(50)] + ["", "é"]

    def snapshot() -> bytes:  # any bytes: RESP bulk strings are length-prefixed
        return bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 41, 300))))

    groups = [[event(seq, *[(rng.choice(accounts), snapshot()) for _ in range(rng.randrange(4))])
               for seq in range(start, start + rng.randrange(30))]
              for start in range(0, 300, 30)]
    groups.append([])
    for head in (0, 9, 10, 123_456_789, 2**62):
        assert hset(b"ledgerfs:balances:EUR", groups, HEAD_FIELD, head) == reference(
            b"ledgerfs:balances:EUR", groups, head)


def test_each_account_is_named_once_with_its_latest_snapshot() -> None:
    groups = [[event(1, ("a", b"a1"), ("b", b"b1")), event(2, ("a", b"a2"))],
              [event(3, ("b", b"b3"), ("a", b"a3"))]]
    assert hset(b"k", groups, HEAD_FIELD, 3) == hiredis.pack_command(
        (b"HSET", b"k", b"a", b"a3", b"b", b"b3", HEAD_FIELD, 3))


def test_with_no_events_only_the_head_is_set() -> None:
    assert hset(b"k", [], HEAD_FIELD, 5) == (
        b"*4\r\n$4\r\nHSET\r\n$1\r\nk\r\n$5\r\n\x00head\r\n$1\r\n5\r\n")


@pytest.mark.parametrize("args, error", [
    ((b"k", [["not an event"]], HEAD_FIELD, 1), TypeError),
    ((b"k", [event(1, ("alice", b"s"))], HEAD_FIELD, 1), TypeError),  # a group not in a list
    ((b"k", [[event(1, ("alice",))]], HEAD_FIELD, 1), TypeError),
    ((b"k", [[event(1, ("alice", "not bytes"))]], HEAD_FIELD, 1), TypeError),
    ((b"k", [[event(1, (b"alice", b"s"))]], HEAD_FIELD, 1), TypeError),
    ((b"k", [[Event(1, "transfer", None, b"", b"", ("alice", b"s"))]], HEAD_FIELD, 1), TypeError),
    (("k", [], HEAD_FIELD, 1), TypeError),
    ((b"k", [], HEAD_FIELD, "1"), TypeError),
    ((b"k", [], HEAD_FIELD, -1), ValueError),
])
def test_refuses_what_it_cannot_pack(args, error) -> None:
    with pytest.raises(error):
        hset(*args)
