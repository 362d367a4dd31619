"""The committed-event stream over Redis: one stream per ledger, entries keyed by seq.

An entry holds a run of consecutive events (at most `ENTRY_EVENTS`), stored bytes and chain
hashes as in the log, under the explicit id `<last seq>-1`. Ids therefore grow with seq, a
reader asks for "entries after seq N" as `XREAD ... <N>-1`, a republished run is refused by
Redis as a duplicate id, and retention is expressed in events (`XADD ... MINID ~ <seq>`), not
entries. Readers use `ledger.stream.StreamConsumer`, which fills what the stream lost from the
log; this module never has to be reliable, only fast.
"""

from __future__ import annotations

import redis

from ledger.core.chain import StoredEvent
from ledger.core.machine import Event
from ledger.stream import DEFAULT_RETENTION_EVENTS, EventStream
from ledger.transport import codec, keys
from ledger.transport.redis_bus import redis_client

ENTRY_EVENTS = 512
READ_COUNT = 64


def _entry_id(last_seq: int) -> str:
    return f"{last_seq}-1"


def _last_seq_of(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class RedisEventStream(EventStream):
    def __init__(self, url: str, *, retention_events: int = DEFAULT_RETENTION_EVENTS) -> None:
        self.retention_events = retention_events
        self._redis = redis_client(url)

    def publish_decided(self, ledger: str, events: list[Event]) -> None:
        # The encoder takes a writer's events as they are (no StoredEvent built for each).
        self.publish(ledger, events)

    def publish(self, ledger: str, events: list[StoredEvent] | list[Event]) -> None:
        if not events:
            return
        key = keys.events(ledger)
        pipe = self._redis.pipeline(transaction=False)
        for start in range(0, len(events), ENTRY_EVENTS):
            run = events[start:start + ENTRY_EVENTS]
            last = run[-1].seq
            pipe.xadd(
                key, {"e": codec.events_encode(run)}, id=_entry_id(last),
                minid=max(0, last - self.retention_events),
                # Approximate trimming (whole radix-tree nodes) is cheap but coarse.
                approximate=self.retention_events >= 10_000,
            )
        for outcome in pipe.execute(raise_on_error=False):
            # A run published before (by a writer that restarted) is refused as a duplicate
            # id; anything else is a real failure.
            if isinstance(outcome, redis.ResponseError) and "equal or smaller" not in str(outcome):
                raise outcome

    def read(self, ledger: str, after_seq: int, timeout_seconds: float) -> list[StoredEvent]:
        start = _entry_id(after_seq) if after_seq >= 0 else "0-0"
        block = max(1, int(timeout_seconds * 1000)) if timeout_seconds > 0 else None
        answer = self._redis.xread({keys.events(ledger): start}, count=READ_COUNT, block=block)
        out: list[StoredEvent] = []
        for _, entries in answer or ():
            for _, fields in entries:
                out.extend(codec.events_decode(fields[b"e"]))
        # An entry holds a run of events; the first of the run may be at or before after_seq.
        return [event for event in out if event.seq > after_seq]

    def last_seq(self, ledger: str) -> int:
        entries = self._redis.xrevrange(keys.events(ledger), count=1)
        return _last_seq_of(entries[0][0]) if entries else -1

    def close(self) -> None:
        self._redis.close()
