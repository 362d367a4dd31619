"""Bytes on the wire: bus requests, bus replies and stream events.

A request carries its commands as they were given (the writer validates them, so a malformed
field must reach it unchanged): orjson, or the standard library's json for what orjson cannot
hold (integers beyond 64 bits, which orjson would silently turn into floats on the way back).
A reply carries each result and, for every success, its event's canonical bytes and chain hash
exactly as stored, replays included: the web process answers from the reply without reading
the log. Layout of a reply and of an event batch: a JSON header line, then the raw bytes.
"""

from __future__ import annotations

import json
import struct
from operator import attrgetter
from typing import Any

import orjson

from ledger.core.chain import StoredEvent
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.machine import Event, Result, commands_from_rows

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

def request_encode(request_id: str, reply_to: str, deadline_ms: int, request: Request) -> bytes:
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
    request_id: str, results: list[Result], replayed_events: dict[int, StoredEvent],
    last_seq: int,
) -> bytes:
    """`replayed_events` maps the seq of each replayed success to its stored event."""
    rows = []
    blobs = []
    for result in results:
        event = result.event
        if event is not None:
            seq, data, chain_hash = event.seq, event.data, event.hash
        else:
            stored = replayed_events.get(result.seq)
            seq = result.seq
            data, chain_hash = (stored.body, stored.hash) if stored else (None, None)
        if data is None:
            rows.append([int(result.code), result.replayed, seq, result.account, -1])
        else:
            rows.append([int(result.code), result.replayed, seq, result.account, len(data)])
            blobs.append(chain_hash)
            blobs.append(data)
    return b"".join((orjson.dumps([request_id, last_seq, rows]), b"\n", *blobs))


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

def events_encode(events: list[StoredEvent]) -> bytes:
    """Stored events back to back: seq (8), body length (4), chain hash (32), body."""
    pack = _EVENT_HEADER.pack
    parts = []
    for event in events:
        parts.append(pack(event.seq, len(event.body)))
        parts.append(event.hash)
        parts.append(event.body)
    return b"".join(parts)


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
