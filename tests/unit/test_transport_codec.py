"""The bus codec: a request reaches the writer with every command field as it was given, and a
reply brings back every result with its event's stored bytes and chain hash."""

from __future__ import annotations

import struct

import orjson
import pytest

from ledger.core.chain import StoredEvent
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.machine import Event, Result
from ledger.transport.codec import (
    CodecError,
    events_decode,
    events_encode,
    reply_encode,
    reply_encode_error,
    reply_header,
    reply_results,
    request_decode,
    request_encode,
)


def test_a_request_round_trips_with_every_field():
    commands = [
        Command("open_account", "k-1", "client", did="did:x", kind="user", tags=["a", "b"],
                safeguarding="safeguarded", metadata={"note": "é", "n": [1, 2]}),
        Command("hold", "k-2", "client", account="acc_eur_a", beneficiary="acc_eur_b",
                amount=7, expires_at=123, escrow_id="e", trial_id="t", netting_batch_id="n"),
        Command("release", "k-3", "client", hold_id="hold_eur_x", amount=2),
        # Malformed values travel unchanged; the writer rejects them, not the codec.
        Command("transfer", "k-4", "client", account="acc_eur_a", to="acc_eur_b", amount="12"),
        Command("transfer", "k-5", "client", account="acc_eur_a", to="acc_eur_b", amount=2**70),
    ]
    request = Request(commands, atomic=True)
    request_id, reply_to, deadline_ms, decoded = request_decode(
        request_encode("r-1", "reply:1", 42, request)
    )
    assert (request_id, reply_to, deadline_ms) == ("r-1", "reply:1", 42)
    assert decoded == request


def test_a_command_row_of_the_wrong_length_is_not_a_request():
    encoded = request_encode("r-1", "reply:1", 42, Request([Command("transfer", "k", "c")]))
    short = encoded.replace(b',null]]]', b']]]', 1)  # the last field of the only row dropped
    assert short != encoded
    with pytest.raises(CodecError, match="not a bus request"):
        request_decode(short)


def test_a_reply_round_trips_new_replayed_and_rejected_results():
    new = Event(7, "transfer", None, b'{"seq":7}', b"h" * 32)
    results = [
        Result(ResultCode.ok, new, False, 7, None),
        Result(ResultCode.ok, None, True, 3, "acc_eur_a"),  # replayed: bytes from the log
        Result(ResultCode.ok, None, True, 5, None),  # replayed, not found in the log
        Result(ResultCode.insufficient_funds, None, False, -1, None),
    ]
    stored = {3: StoredEvent(3, b'{"seq":3,"x":"\xc3\xa9"}', b"g" * 32)}
    loaded = []
    data = reply_encode("r-9", results, lambda seq: loaded.append(seq) or stored.get(seq), 11)
    assert loaded == [3, 5]  # only replays without their event are looked up
    request_id, last_seq, rows, offset = reply_header(data)
    assert (request_id, last_seq) == ("r-9", 11)
    decoded = reply_results(rows, data, offset)
    assert [(r.code, r.replayed, r.seq, r.account) for r in decoded] == [
        (r.code, r.replayed, r.seq, r.account) for r in results]
    assert [(r.event.seq, r.event.data, r.event.hash) if r.event else None for r in decoded] == [
        (7, b'{"seq":7}', b"h" * 32), (3, stored[3].body, b"g" * 32), None, None]
    assert all(type(r.code) is ResultCode for r in decoded)


def test_an_error_reply_carries_its_message_instead_of_rows():
    request_id, last_seq, message, _ = reply_header(reply_encode_error("r-2", 4, "disk full"))
    assert (request_id, last_seq, message) == ("r-2", 4, "disk full")


def test_bytes_without_a_header_line_are_not_a_reply():
    with pytest.raises(CodecError, match="not a bus reply"):
        reply_header(b'["r-1", 4, []]')


def test_a_reply_header_is_the_json_orjson_writes_for_its_rows():
    """The C encoder writes the header line by hand; it must be the JSON that orjson writes
    for the same rows, odd account strings included."""
    accounts = [None, "acc_eur_a", 'q"uote', "back\\slash", "tab\tnew\nline\x01", "é€"]
    results = [Result(ResultCode.ok, Event(i, "transfer", None, b"{}", bytes([i]) * 32), False,
                      i, account) for i, account in enumerate(accounts)]
    results.append(Result(ResultCode.insufficient_funds, None, False, -1, None))
    data = reply_encode("r\"1", results, lambda seq: None, 2**40)
    header, _, blobs = data.partition(b"\n")
    rows = [[0, False, i, account, 2] for i, account in enumerate(accounts)]
    rows.append([int(ResultCode.insufficient_funds), False, -1, None, -1])
    assert header == orjson.dumps(['r"1', 2**40, rows])
    assert blobs == b"".join(bytes([i]) * 32 + b"{}" for i in range(len(accounts)))


def test_a_reply_of_anything_but_results_is_refused():
    with pytest.raises(TypeError, match=r"results\[1\] is not a Result"):
        reply_encode("r", [Result(ResultCode.ok, None, False, -1, None), "x"], lambda s: None, 0)
    replay = [Result(ResultCode.ok, None, True, 3, None)]
    with pytest.raises(TypeError, match="load"):
        reply_encode("r", replay, lambda seq: (seq, "not bytes", b"h" * 32), 0)
    with pytest.raises(ZeroDivisionError):
        reply_encode("r", replay, lambda seq: 1 / 0, 0)


def test_stored_and_decided_events_encode_alike_and_decode_back():
    stored = [StoredEvent(5, b'{"seq":5}', b"a" * 32), StoredEvent(6, b"", b"b" * 32)]
    decided = [Event(e.seq, "transfer", None, e.body, e.hash) for e in stored]
    expected = b"".join(struct.pack(">QI", e.seq, len(e.body)) + e.hash + e.body for e in stored)
    assert events_encode(stored) == events_encode(decided) == expected
    assert events_decode(events_encode([decided[0], stored[1]])) == stored
    assert events_encode([]) == b""


def test_an_event_without_a_32_byte_hash_is_not_encoded():
    with pytest.raises(TypeError, match="32-byte hash"):
        events_encode([StoredEvent(1, b"x", b"short")])
    with pytest.raises(TypeError, match="not a stored event"):
        events_encode([{"seq": 1}])
