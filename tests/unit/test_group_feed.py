"""`GroupFeed`: the events right after a cursor, or nothing when it does not hold them."""

from __future__ import annotations

from ledger.core.machine import Event
from ledger.group_feed import GroupFeed


def group(first: int, last: int) -> list[Event]:
    return [Event(seq, "transfer", None, b"", b"", []) for seq in range(first, last + 1)]


def seqs(events: list[Event]) -> list[int]:
    return [event.seq for event in events]


def test_takes_contiguous_groups_up_to_the_limit_and_keeps_the_rest() -> None:
    feed = GroupFeed()
    for first, last in ((10, 12), (13, 13), (14, 17)):
        feed.add("EUR", group(first, last), last)
    assert seqs(feed.take("EUR", 9, 5)) == [10, 11, 12, 13, 14]
    assert seqs(feed.take("EUR", 14, 100)) == [15, 16, 17]
    assert feed.take("EUR", 17, 100) == []
    assert feed.take("USD", -1, 100) == []


def test_skips_what_the_cursor_has_passed_and_starts_inside_a_group() -> None:
    feed = GroupFeed()
    feed.add("EUR", group(10, 12), 12)
    feed.add("EUR", group(13, 16), 16)
    # The projector read up to 14 from the store (the feed was behind): it resumes at 15.
    assert seqs(feed.take("EUR", 14, 100)) == [15, 16]


def test_a_gap_before_the_cursor_gives_nothing_and_keeps_the_groups() -> None:
    feed = GroupFeed()
    feed.add("EUR", group(20, 22), 22)
    assert feed.take("EUR", 15, 100) == []  # 16..19 are only in the store
    assert seqs(feed.take("EUR", 19, 100)) == [20, 21, 22]


def test_stops_at_a_gap_between_groups() -> None:
    feed = GroupFeed()
    feed.add("EUR", group(1, 2), 2)
    feed.add("EUR", group(5, 6), 6)
    assert seqs(feed.take("EUR", 0, 100)) == [1, 2]
    assert feed.take("EUR", 2, 100) == []


def test_drops_the_oldest_groups_beyond_its_size() -> None:
    feed = GroupFeed(max_events=5)
    feed.add("EUR", group(1, 3), 3)
    feed.add("EUR", group(4, 6), 6)  # 6 events held: the first group goes
    assert feed.take("EUR", 0, 100) == []
    assert seqs(feed.take("EUR", 3, 100)) == [4, 5, 6]
    feed.add("EUR", group(7, 8), 8)
    assert seqs(feed.take("EUR", 6, 1)) == [7]
    assert seqs(feed.take("EUR", 7, 1)) == [8]
