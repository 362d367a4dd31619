"""The committed-event stream contract, run against both streams: in-process and Redis.

The events are real: a writer on a RocksDB shard commits them. Stream tests check ordering,
reads after a seq, duplicates and retention; consumer tests check the promise that matters, a
`StreamConsumer` sees every committed event exactly once and in order even when the stream lost
messages, trimmed them, lost everything (a broker restart) or never got the last one.
"""

from __future__ import annotations

import time

import pytest

from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.group_feed import GroupFeed
from ledger.stream import InProcessEventStream, StreamConsumer, StreamPublisher
from ledger.writer import Writer
from tests.support.services import wait_for

LEDGER = "EUR"


@pytest.fixture
def shard(tmp_path):
    """A writer and its store, with 2 genesis events plus 2 opens and 40 mints (seq 0..43)."""
    store = RocksEventStore(tmp_path / LEDGER, LEDGER)
    writer = Writer(store).start()
    account = account_id_for(LEDGER, "did:a")
    writer.execute(Request([Command("open_account", "o-a", did="did:a"),
                            Command("open_account", "o-b", did="did:b")]))
    for i in range(40):
        writer.execute(Request([Command("mint", f"m{i}", account=account, amount=1)]))
    yield writer, store
    writer.stop()
    store.close()


def all_events(store):
    return list(store.read(-1))


class StreamContract:
    """Subclasses provide `stream` and `drop_all(stream)` (what a broker restart does)."""

    def drop_all(self, stream) -> None:
        raise NotImplementedError

    def test_published_events_are_read_in_order_after_a_seq(self, stream, shard):
        _, store = shard
        events = all_events(store)
        stream.publish(LEDGER, events[:10])
        stream.publish(LEDGER, events[10:])
        assert stream.read(LEDGER, -1, 1.0)[:3] == events[:3]
        assert [e.seq for e in stream.read(LEDGER, 20, 1.0)][:1] == [21]
        # Read from the middle, the newest one, and from before the oldest kept event.
        last = events[-1].seq
        assert stream.read(LEDGER, last - 3, 1.0) == events[-3:]
        assert stream.read(LEDGER, last - 1, 1.0) == events[-1:]
        assert stream.read(LEDGER, -5, 1.0)[:2] == events[:2]
        assert stream.last_seq(LEDGER) == events[-1].seq
        assert stream.read(LEDGER, events[-1].seq, 0.05) == []
        assert stream.read("USD", -1, 0.05) == []

    def test_a_read_waits_for_a_publish(self, stream, shard):
        import threading

        _, store = shard
        events = all_events(store)
        stream.publish(LEDGER, events[:5])
        timer = threading.Timer(0.2, stream.publish, args=(LEDGER, events[5:7]))
        timer.start()
        started = time.monotonic()
        got = stream.read(LEDGER, 4, 5.0)
        assert [e.seq for e in got] == [5, 6]
        assert time.monotonic() - started < 4

    def test_a_republished_run_is_not_duplicated(self, stream, shard):
        _, store = shard
        events = all_events(store)
        stream.publish(LEDGER, events[:10])
        stream.publish(LEDGER, events[:10])
        stream.publish(LEDGER, events[10:12])
        seqs = [e.seq for e in _drain(stream, -1)]
        assert seqs == list(range(12))

    def test_consumer_sees_everything_once_when_messages_are_lost(self, stream, shard):
        _, store = shard
        events = all_events(store)
        for start in range(0, len(events), 4):
            if start // 4 % 3 == 1:
                continue  # this message is lost
            stream.publish(LEDGER, events[start:start + 4])
        consumer = StreamConsumer(stream, store, LEDGER)
        assert _consume(consumer, len(events)) == events
        assert consumer.events_from_log > 0

    def test_consumer_recovers_a_lost_tail_from_the_log(self, stream, shard):
        _, store = shard
        events = all_events(store)
        stream.publish(LEDGER, events[:20])  # the rest was never published
        consumer = StreamConsumer(stream, store, LEDGER)
        assert _consume(consumer, len(events)) == events

    def test_consumer_resumes_from_its_cursor_after_the_stream_lost_everything(
        self, stream, shard
    ):
        writer, store = shard
        stream.publish(LEDGER, all_events(store))
        consumer = StreamConsumer(stream, store, LEDGER, cursor=9)
        first = _consume(consumer, len(all_events(store)) - 10)
        assert [e.seq for e in first] == list(range(10, len(all_events(store))))
        self.drop_all(stream)
        account = account_id_for(LEDGER, "did:a")
        writer.execute(Request([Command("mint", "after", account=account, amount=1)]))
        later = all_events(store)
        stream.publish(LEDGER, later[-1:])
        assert _consume(consumer, 1) == later[-1:]

    def test_consumer_reads_through_a_trimmed_stream(self, stream, shard):
        _, store = shard
        events = all_events(store)
        stream.retention_events = 8
        for start in range(0, len(events), 2):
            stream.publish(LEDGER, events[start:start + 2])
        consumer = StreamConsumer(stream, store, LEDGER)
        assert _consume(consumer, len(events)) == events

    @pytest.mark.parametrize("fed", [False, True], ids=["from-the-store", "from-memory"])
    def test_publisher_follows_the_writer_and_skips_nothing(self, stream, shard, fed,
                                                            monkeypatch):
        """Fed from memory, the publisher reads nothing back from the store, and publishes
        the very bytes and hashes the store holds."""
        writer, store = shard
        feed = GroupFeed() if fed else None
        if feed is not None:
            writer.durable_listeners.append(lambda events, seq: feed.add(LEDGER, events, seq))
        reads = []
        read = store.read
        monkeypatch.setattr(store, "read", lambda *args: reads.append(args) or read(*args))
        last = _mint_while_publishing(writer, StreamPublisher(stream, store, feed=feed), 30)
        published = _drain(stream, 43)
        assert [e.seq for e in published] == list(range(44, last + 1))
        assert published == list(read(43))
        assert (reads == []) is fed


def test_a_publisher_fed_from_memory_reads_the_store_after_a_failed_publish(shard):
    """The events taken from the feed for a publish that failed are gone from it; the retry
    finds them in the store, so the stream still gets every event once and in order."""
    writer, store = shard

    class FailsOnce(InProcessEventStream):
        failed = False

        def publish(self, ledger, events):
            if not self.failed:
                self.failed = True
                raise ConnectionError("the broker went away")
            super().publish(ledger, events)

    stream = FailsOnce()
    feed = GroupFeed()
    writer.durable_listeners.append(lambda events, seq: feed.add(LEDGER, events, seq))
    _mint_while_publishing(writer, StreamPublisher(stream, store, feed=feed, retry_seconds=0.01),
                           10)
    assert stream.failed
    assert _drain(stream, 43) == list(store.read(43))


def _mint_while_publishing(writer, publisher: StreamPublisher, count: int) -> int:
    """`count` mints, one group each, with `publisher` started and notified of each commit;
    returns the last seq once the stream has it."""
    publisher.start()
    writer.on_commit = publisher.notify
    account = account_id_for(LEDGER, "did:a")
    try:
        for i in range(count):
            writer.execute(Request([Command("mint", f"p{i}", account=account, amount=1)]))
        last = writer.store.head()[0]
        wait_for(lambda: publisher.stream.last_seq(LEDGER) == last, 10, "the publisher")
    finally:
        writer.on_commit = None
        publisher.stop()
    return last


def _drain(stream, after_seq: int) -> list:
    out = []
    while batch := stream.read(LEDGER, after_seq, 0.05):
        out.extend(batch)
        after_seq = batch[-1].seq
    return out


def _consume(consumer: StreamConsumer, count: int) -> list:
    out: list = []
    deadline = time.monotonic() + 20
    while len(out) < count and time.monotonic() < deadline:
        out.extend(consumer.poll(0.05))
    return out


class TestInProcessEventStream(StreamContract):
    @pytest.fixture
    def stream(self):
        stream = InProcessEventStream()
        yield stream
        stream.close()

    def drop_all(self, stream) -> None:
        stream.drop(LEDGER)


class TestRedisEventStream(StreamContract):
    @pytest.fixture
    def stream(self, redis_url):
        from ledger.transport.redis_stream import RedisEventStream

        stream = RedisEventStream(redis_url)
        yield stream
        stream.close()

    @pytest.fixture(autouse=True)
    def _server(self, redis_server):
        self.redis_server = redis_server

    def drop_all(self, stream) -> None:
        self.redis_server.restart()  # SIGKILL; no persistence: the stream is gone
