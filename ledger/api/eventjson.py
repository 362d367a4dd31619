"""Events as the API serves them: the stored canonical body with the chain hash appended.

The body bytes are served as stored (they are what was hashed), so a client can re-hash
exactly what it received; `hash` is added as the last member, outside the canonical body.
"""

from __future__ import annotations

import orjson

from ledger.core.chain import StoredEvent
from ledger.core.machine import Result
from ledger.eventstore.port import EventStore


def event_json(body: bytes, chain_hash: bytes) -> orjson.Fragment:
    """`{...body..., "hash": "<hex>"}` as pre-serialised JSON for orjson."""
    return orjson.Fragment(b"".join((body[:-1], b',"hash":"', chain_hash.hex().encode(), b'"}')))


def stored_event_json(event: StoredEvent) -> orjson.Fragment:
    return event_json(event.body, event.hash)


def result_event(result: Result, store: EventStore) -> StoredEvent | None:
    """The event of a command result: new, or loaded from the log for a replayed success."""
    if result.event is not None:
        return StoredEvent(result.event.seq, result.event.data, result.event.hash)
    if result.seq >= 0:
        return store.get(result.seq)
    return None


def result_event_json(result: Result, store: EventStore) -> orjson.Fragment | None:
    if result.event is not None:  # the common case, without the intermediate object
        return event_json(result.event.data, result.event.hash)
    event = result_event(result, store)
    return None if event is None else stored_event_json(event)
