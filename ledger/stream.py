"""The committed-event stream: how consumers learn about events after they are durable.

The writer of a shard publishes its committed events, in seq order, after each durable group.
A stream is a fast path, not a source of truth: messages may be lost (a broker restart), trimmed
(bounded retention) or repeated (a writer that republishes after a restart). So every consumer
keeps its own cursor, the last seq it has handled, and `StreamConsumer` fills any gap, and the
tail after a quiet period, from the shard's event log. Key invariant: a consumer sees every
committed event exactly once, in seq order, whatever the stream lost.

Two implementations of the `EventStream` port: `InProcessEventStream` here (embedded mode,
tests) and `ledger.transport.redis_stream.RedisEventStream` (one Redis stream per ledger).
`tests/integration/test_stream_contract.py` is the contract both pass.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

from ledger.core.chain import StoredEvent
from ledger.core.machine import Event
from ledger.eventstore.port import EventStore
from ledger.group_feed import GroupFeed

log = logging.getLogger(__name__)

DEFAULT_RETENTION_EVENTS = 100_000
"""Events a stream keeps per ledger; older ones are trimmed (consumers read them from the log)."""

PUBLISH_CHUNK_EVENTS = 4_096
"""Events a publisher takes at a time."""


class EventStream(ABC):
    """Publish committed events of a ledger; read those after a seq. Best effort: readers must
    not assume the result starts at `after_seq + 1` or has no holes (see `StreamConsumer`)."""

    @abstractmethod
    def publish(self, ledger: str, events: list[StoredEvent]) -> None:
        """Append committed events (ascending seq, following what was published before)."""

    def publish_decided(self, ledger: str, events: list[Event]) -> None:
        """`publish` for events as the writer decided them (`GroupFeed`), which carry their
        stored bytes as `data`; a stream that can encode them as they are overrides this."""
        self.publish(ledger, [StoredEvent(event.seq, event.data, event.hash) for event in events])

    @abstractmethod
    def read(self, ledger: str, after_seq: int, timeout_seconds: float) -> list[StoredEvent]:
        """Stored events with seq > after_seq still in the stream, waiting up to
        `timeout_seconds` for some to arrive; [] if none did."""

    @abstractmethod
    def last_seq(self, ledger: str) -> int:
        """The last seq published to the stream of `ledger`; -1 if it holds none."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads."""


class InProcessEventStream(EventStream):
    """Events kept in memory, per ledger, for consumers in the same process."""

    def __init__(self, retention_events: int = DEFAULT_RETENTION_EVENTS) -> None:
        self.retention_events = retention_events
        self._events: dict[str, deque[StoredEvent]] = {}
        self._changed = threading.Condition()

    def publish(self, ledger: str, events: list[StoredEvent]) -> None:
        if not events:
            return
        with self._changed:
            kept = self._events.setdefault(ledger, deque(maxlen=self.retention_events))
            last = kept[-1].seq if kept else -1
            kept.extend(event for event in events if event.seq > last)
            self._changed.notify_all()

    def read(self, ledger: str, after_seq: int, timeout_seconds: float) -> list[StoredEvent]:
        deadline = time.monotonic() + timeout_seconds
        with self._changed:
            while True:
                kept = self._events.get(ledger)
                if kept and kept[-1].seq > after_seq:
                    # Seqs increase along the deque: walk back from the newest event only as
                    # far as the reader has not seen, not over the whole retention window
                    # (a full scan per poll was 8% of the embedded server's GIL under load).
                    newer = []
                    for event in reversed(kept):
                        if event.seq <= after_seq:
                            break
                        newer.append(event)
                    newer.reverse()
                    return newer
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._changed.wait(remaining)

    def last_seq(self, ledger: str) -> int:
        with self._changed:
            kept = self._events.get(ledger)
            return kept[-1].seq if kept else -1

    def close(self) -> None:
        with self._changed:
            self._events.clear()

    def drop(self, ledger: str) -> None:
        """Forget everything published for `ledger` (what a broker restart does; for tests)."""
        with self._changed:
            self._events.pop(ledger, None)


class StreamConsumer:
    """Reads one ledger's events gaplessly from a stream, falling back on the event log.

    `cursor` is the last seq the consumer has handled (-1 before any); the caller persists it
    wherever its own state lives and passes it back after a restart. `store` is the shard's
    event store as this process sees it; for a RocksDB secondary instance pass its `catch_up`
    too, so it is brought up to the writer before it is read.
    """

    def __init__(
        self, stream: EventStream, store: EventStore, ledger: str, cursor: int = -1,
        *, catch_up: Callable[[], None] | None = None, log_batch_events: int = 10_000,
    ) -> None:
        self.stream = stream
        self.store = store
        self.catch_up = catch_up
        self.ledger = ledger
        self.cursor = cursor
        self.log_batch_events = log_batch_events
        self.events_from_log = 0
        """How many events this consumer had to read from the log (gaps, trims, tail)."""

    def poll(self, timeout_seconds: float = 1.0) -> list[StoredEvent]:
        """The next events after the cursor, in order and without holes; advances the cursor.
        Waits up to `timeout_seconds` on the stream; when it stays quiet, checks the log, so a
        lost last message is found too."""
        try:
            received = self.stream.read(self.ledger, self.cursor, timeout_seconds)
        except Exception:
            # The broker is down: the log is still the truth; serve from it meanwhile.
            received = []
        out: list[StoredEvent] = []
        for event in received:
            if event.seq <= self.cursor:
                continue
            if event.seq > self.cursor + 1:
                out.extend(self._from_log(event.seq - 1))
                if self.cursor + 1 != event.seq:
                    break  # the log does not have it yet either: resume from the log later
            out.append(event)
            self.cursor = event.seq
        if not received:
            out.extend(self._from_log(None))
        return out

    def _from_log(self, up_to_seq: int | None) -> list[StoredEvent]:
        """Events after the cursor from the log, up to `up_to_seq` (or a batch of the tail)."""
        if self.catch_up is not None:
            self.catch_up()
        wanted = self.log_batch_events
        if up_to_seq is not None:
            wanted = min(wanted, up_to_seq - self.cursor)
        if wanted <= 0:
            return []
        events = list(self.store.read(self.cursor, wanted))
        if events:
            self.cursor = events[-1].seq
            self.events_from_log += len(events)
        return events


class StreamPublisher:
    """Publishes a shard's committed events from its own thread, off the write path.

    The writer's `on_commit(last_seq)` calls `notify`; the thread publishes what is new. It
    takes the events from `feed` when given one that the writer's durable groups are added to
    (the writer process does), and reads the store for whatever the feed does not hold. If the
    stream is unreachable it retries, and when it comes back more than `retention_events`
    behind it skips ahead: consumers read old events from the log.
    """

    def __init__(self, stream: EventStream, store: EventStore, *, retry_seconds: float = 0.2,
                 feed: GroupFeed | None = None):
        self.stream = stream
        self.store = store
        self.feed = feed
        self.ledger = store.ledger
        self.retry_seconds = retry_seconds
        self.published_seq = -1
        self._target = -1
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> StreamPublisher:
        head = self.store.head()[0]
        try:
            last = self.stream.last_seq(self.ledger)
        except Exception:
            last = -1
        # An empty stream (new, or a broker that lost its data) gets only new events.
        self.published_seq = last if 0 <= last <= head else head
        self._target = head
        self._thread = threading.Thread(
            target=self._run, name=f"ledger-stream-{self.ledger}", daemon=True
        )
        self._thread.start()
        return self

    def notify(self, last_seq: int) -> None:
        with self._wake:
            if last_seq > self._target:
                self._target = last_seq
                self._wake.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        retention = getattr(self.stream, "retention_events", DEFAULT_RETENTION_EVENTS)
        while True:
            with self._wake:
                while self._target <= self.published_seq and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                target = self._target
            self.published_seq = max(self.published_seq, target - retention)
            try:
                while self.published_seq < target:
                    if not self._publish_after(self.published_seq):
                        break
            except Exception:
                log.warning("ledger %s: publishing events failed; retrying", self.ledger,
                            exc_info=True)
                with self._wake:
                    self._wake.wait(self.retry_seconds)

    def _publish_after(self, seq: int) -> bool:
        """Publish the next events after `seq`, from the feed when it holds them; False when
        there were none."""
        if self.feed is not None:
            decided = self.feed.take(self.ledger, seq, PUBLISH_CHUNK_EVENTS)
            if decided:
                self.stream.publish_decided(self.ledger, decided)
                self.published_seq = decided[-1].seq
                return True
        stored = list(self.store.read(seq, PUBLISH_CHUNK_EVENTS))
        if stored:
            self.stream.publish(self.ledger, stored)
            self.published_seq = stored[-1].seq
        return bool(stored)
