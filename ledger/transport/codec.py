"""Bytes on the wire: bus requests, bus replies and stream events.

A request carries its commands as they were given (the writer validates them, so a malformed
field must reach it unchanged): orjson, or the standard library's json for what orjson cannot
hold (integers beyond 64 bits, which orjson would silently turn into floats on the way back).
A reply carries each result and, for every success, its event's canonical bytes and chain hash
exactly as stored, replays included: the web process answers from the reply without reading
the log. A reply is a JSON header line, then the raw bytes; an event batch, the raw bytes each
behind a fixed-size header. The two encoders the writer's process runs per event are in C
(`ledger/transport/_wire.c`); their decoders, here, define the layouts.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import orjson

from ledger.core.chain import StoredEvent
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.machine import Event, Result, commands_from_rows
from ledger.transport import _wire

_wire.configure(result=Result, event=Event)

COMMAND_FIELDS = Command.__slots__
_command_fields = attrgetter(*COMMAND_FIELDS)
_ORJSON = b"o"
_STDLIB_JSON = b"j"
_HASH_SIZE = 32
_EVENT_HEADER = struct.Struct(">QI")
# By value: calling the enum (`ResultCode(code)`) was a fifth of decoding a reply.
_RESULT_CODES = {int(code): code for code in ResultCode}


class CodecError(ValueError):
    """Bytes that are not a message of this codec."""


def _dumps(value: Any) -> bytes:
    try:
        return _ORJSON + orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits; orjson refuses it
        return _STDLIB_JSON + json.dumps(value, separators=(",", ":")).encode()


def _loads(data: bytes) -> Any:
    kind, payload = data[:1], data[1:]
    if kind == _ORJSON:
        return orjson.loads(payload)
    if kind == _STDLIB_JSON:
        return json.loads(payload)
    raise CodecError(f"unknown encoding {kind!r}")


# -- requests -------------------------------------------------------------------------------------

class EncodedCommands:
    """A request whose commands are already the JSON list of their rows (each row the fields
    of `Command.__slots__` in order), as the web reads a transfers body straight into it
    (`ledger.api.batch.batch_rows`); `request_encode` puts the list in as it is."""

    __slots__ = ("rows", "atomic")

    def __init__(self, rows: bytes, atomic: bool) -> None:
        self.rows = rows
        self.atomic = atomic


def request_encode(
    request_id: str, reply_to: str, deadline_ms: int, request: Request | EncodedCommands
) -> bytes:
    if type(request) is EncodedCommands:
        head = orjson.dumps([request_id, reply_to, deadline_ms, request.atomic])
        return b"".join((_ORJSON, head[:-1], b",", request.rows, b"]"))
    # One C call per command for all its fields (a getattr per field cost ~1.5 µs a command).
    fields = _command_fields
    commands = [fields(command) for command in request.commands]
    return _dumps([request_id, reply_to, deadline_ms, request.atomic, commands])


def request_decode(data: bytes) -> tuple[str, str, int, Request]:
    """(request id, reply key, deadline in ms since the epoch, request)."""
    try:
        request_id, reply_to, deadline_ms, atomic, rows = _loads(data)
        commands = commands_from_rows(rows)
    except (ValueError, TypeError) as exc:
        raise CodecError(f"not a bus request: {exc}") from None
    return request_id, reply_to, deadline_ms, Request(commands, atomic)


# -- replies --------------------------------------------------------------------------------------

def reply_encode(
    request_id: str, results: list[Result], load: Callable[[int], StoredEvent | None],
    last_seq: int,
) -> bytes:
    """A reply: a JSON header line `[request_id, last_seq, rows]`, each row `[code, replayed,
    seq, account, length]`, then the chain hash and bytes of each success that has an event
    (length -1 for the others). A replayed success carries no event: `load(seq)` gives the
    stored one, or None when the log does not have it. Written in C (`_wire.reply`)."""
    return _wire.reply(request_id, last_seq, results, load)


def reply_encode_error(request_id: str, last_seq: int, message: str) -> bytes:
    """A reply saying the request failed as a whole and nothing of it was applied."""
    return orjson.dumps([request_id, last_seq, None, message]) + b"\n"


def reply_header(data: bytes) -> tuple[str, int, list | str, int]:
    """(request id, the writer's last seq when it replied, the results' rows or an error
    message, offset of the bytes the rows describe): what a reply says, without building its
    results (`reply_results`)."""
    newline = data.find(b"\n")
    if newline < 0:
        raise CodecError("not a bus reply: no header line")
    header = orjson.loads(data[:newline])
    request_id, last_seq, rows = header[:3]
    return request_id, last_seq, header[3] if rows is None else rows, newline + 1


def reply_results(rows: list, data: bytes, offset: int) -> list[Result]:
    """The results a reply's header rows describe, their events' bytes from `offset` on."""
    results = []
    for code, replayed, seq, account, length in rows:
        event = None
        if length >= 0:
            chain_hash = data[offset:offset + _HASH_SIZE]
            offset += _HASH_SIZE
            # Only the bytes travel; the body is decoded if someone asks for it.
            event = Event(seq, None, None, data[offset:offset + length], chain_hash)
            offset += length
        results.append(Result(_RESULT_CODES[code], event, replayed, seq, account))
    return results


# -- events ---------------------------------------------------------------------------------------

def events_encode(events: list[StoredEvent | Event]) -> bytes:
    """Events back to back: seq (8 bytes), body length (4), chain hash (32), body. Stored
    events or a writer's decided ones alike; written in C (`_wire.events`)."""
    return _wire.events(events)


def events_decode(data: bytes) -> list[StoredEvent]:
    out = []
    offset = 0
    size = _EVENT_HEADER.size
    unpack = _EVENT_HEADER.unpack_from
    end = len(data)
    while offset < end:
        seq, length = unpack(data, offset)
        offset += size
        chain_hash = data[offset:offset + _HASH_SIZE]
        offset += _HASH_SIZE
        out.append(StoredEvent(seq, data[offset:offset + length], chain_hash))
        offset += length
    if offset != end:
        raise CodecError("truncated event batch")
    return out
