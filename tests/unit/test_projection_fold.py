"""`ledger._projection.fold`: the projector's per-event pass over a round's events."""

from __future__ import annotations

import pytest
from ledger._projection import configure, fold

from ledger.core.machine import Event

configure(event=Event)


def event(seq: int, etype: str | None, *accounts: str) -> Event:
    return Event(seq, etype, None, b"", b"", [(a, b"s%d" % seq) for a in accounts])


def test_later_events_win_and_only_plain_transfers_set_the_last_seq() -> None:
    hold = event(11, "hold", "alice", "bob")
    received = event(13, None, "bob")  # over the bus: bytes only, its type unknown
    known: dict = {}
    last_seq_of: dict = {}
    others = fold([event(10, "transfer", "alice", "bob"), hold,
                   event(12, "transfer", "alice", "carol"), received], known, last_seq_of)
    assert others == [hold, received]
    assert known == {"alice": (12, b"s12"), "bob": (13, b"s13"), "carol": (12, b"s12")}
    assert last_seq_of == {"alice": 12, "bob": 10, "carol": 12}


def test_a_type_built_at_run_time_counts_as_a_transfer() -> None:
    known: dict = {}
    last_seq_of: dict = {}
    assert fold([event(5, "".join(["trans", "fer"]), "alice")], known, last_seq_of) == []
    assert last_seq_of == {"alice": 5}


@pytest.mark.parametrize("events", [
    ["not an event"],
    [Event(1, "transfer", None, b"", b"", [("alice",)])],
    [Event(1, "transfer", None, b"", b"", ("alice", b""))],
])
def test_malformed_input_is_refused(events) -> None:
    with pytest.raises(TypeError):
        fold(events, {}, {})


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        fold((), {}, {})
    with pytest.raises(TypeError):
        fold([], {})
