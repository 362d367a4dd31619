"""The writer's bus server puts small requests first, on the way in and on the way out: a lone
payment sent beside bulk batches is handed to the writer before their decoding, and its reply
is sent without the bulk replies queued before it or the balances queued behind it (python -m
bench http-distributed: a single transfer under load waited tens of milliseconds for both).
Each group's balances still go out in the writer's order and before any reply of that group."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from types import SimpleNamespace

import redis

from ledger.core.commands import Command, Request
from ledger.core.machine import Event
from ledger.transport import codec, keys, redis_bus
from ledger.transport.redis_bus import RedisBusServer, _Durable
from tests.support.services import wait_for

LEDGER = "EUR"


class RecordingWriter:
    """Stands in for a writer: records what it is handed, in order, and never answers."""

    ledger = LEDGER
    store = SimpleNamespace(get=lambda seq: None)  # a log that holds nothing
    last_seq = -1

    def __init__(self) -> None:
        self.durable_listeners: list = []
        self.submitted: list[int] = []

    def submit(self, request: Request) -> Future:
        self.submitted.append(len(request.commands))
        return Future()

    def stop(self) -> None:
        pass


def request_of(size: int, tag: str) -> bytes:
    commands = [Command("transfer", f"{tag}-{i}", "client", account="acc_eur_a",
                        to="acc_eur_b", amount=1) for i in range(size)]
    deadline_ms = int((time.time() + 60) * 1000)
    return codec.request_encode(f"req-{tag}", "reply:test", deadline_ms, Request(commands))


def test_requests_read_together_reach_the_writer_shortest_first(redis_url):
    client = redis.Redis.from_url(redis_url)
    for size, tag in ((50, "a"), (1, "b"), (20, "c"), (1, "d"), (3, "e")):
        client.xadd(keys.bus(LEDGER), {"r": request_of(size, tag)})
    writer = RecordingWriter()
    server = RedisBusServer(redis_url, writer)
    thread = threading.Thread(target=server.serve)
    thread.start()
    try:
        wait_for(lambda: len(writer.submitted) == 5, 10, "the requests")
    finally:
        server.stop()
        thread.join(15)
    assert writer.submitted == [1, 1, 3, 20, 50]


class RecordingServer(RedisBusServer):
    def __init__(self, url: str, writer) -> None:
        super().__init__(url, writer)
        self.sent: list[list[str]] = []
        send_bulk = self._bulk.send

        def record_bulk(item: tuple) -> None:
            self.sent.append([item[1]])
            send_bulk(item)

        self._bulk.send = record_bulk

    def _send(self, batch: list) -> None:
        self.sent.append(["durable" if type(item) is _Durable else item[1] for item in batch])
        super()._send(batch)


def reply(request_id: str, size: int) -> tuple:
    future: Future = Future()
    future.set_result([])
    return (f"{len(request_id)}-0", request_id, "reply:test", future, size <= 10)


def event(seq: int) -> Event:
    return Event(seq, "transfer", None, b"{}", b"h" * 32, [("acc_eur_a", b"s" * 41)])


def test_a_small_requests_reply_goes_before_bulk_replies_and_later_balances(redis_url,
                                                                            monkeypatch):
    monkeypatch.setattr(redis_bus, "MAX_BULK_REPLY_DEFERRAL_SECONDS", 60.0)
    server = RecordingServer(redis_url, RecordingWriter())
    for item in (_Durable([event(1)], 1), reply("bulk-1", 1_000), reply("single", 1),
                 _Durable([event(2)], 2), reply("bulk-2", 1_000), reply("small", 10), None):
        server._replies.put(item)
    server._reply_loop()
    assert server.sent == [["durable", "single"], ["durable", "small"], ["bulk-1", "bulk-2"]]


def test_bulk_replies_are_not_starved_by_a_stream_of_small_ones(redis_url, monkeypatch):
    """However much keeps arriving, once the oldest deferred bulk reply has waited long enough
    (here at once), each batch sent is followed by one."""
    monkeypatch.setattr(redis_bus, "MAX_BULK_REPLY_DEFERRAL_SECONDS", 0.0)
    server = RecordingServer(redis_url, RecordingWriter())
    items = [_Durable([event(1)], 1), reply("bulk-1", 1_000), reply("bulk-2", 1_000)]
    for seq in range(2, 5):
        items += [_Durable([event(seq)], seq), reply(f"single-{seq}", 1)]
    for item in (*items, None):
        server._replies.put(item)
    server._reply_loop()
    assert server.sent == [["durable", "durable", "single-2"], ["bulk-1"],
                           ["durable", "single-3"], ["bulk-2"], ["durable", "single-4"]]


def test_bulk_replies_go_one_at_a_time_after_their_groups_balances(redis_url):
    """With nothing else queued, the deferred bulk replies are sent one per round trip, so a
    small reply arriving meanwhile waits for one of them at most."""
    server = RecordingServer(redis_url, RecordingWriter())
    for item in (_Durable([event(1)], 1), reply("bulk-1", 1_000), reply("bulk-2", 1_000)):
        server._replies.put(item)
    thread = threading.Thread(target=server._reply_loop)
    thread.start()
    try:
        wait_for(lambda: len(server.sent) == 3, 10, "the replies")
        server._replies.put(_Durable([event(2)], 2))
        server._replies.put(reply("single", 1))
        wait_for(lambda: len(server.sent) == 4, 10, "the small reply")
    finally:
        server._replies.put(None)
        thread.join(10)
    assert server.sent == [["durable"], ["bulk-1"], ["bulk-2"], ["durable", "single"]]


def test_a_bulk_reply_goes_out_before_redis_answers_and_again_if_they_are_lost(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete("reply:test")
    server = RecordingServer(redis_url, RecordingWriter())
    server._bulk.send(reply("bulk-1", 1_000))
    wait_for(lambda: client.llen("reply:test") == 1, 10, "the bulk reply")
    assert server.requests_handled == 0  # its answers are not read yet
    server._bulk.settle()
    assert server.requests_handled == 1

    server._bulk.send(reply("bulk-2", 1_000))
    server._bulk._connection.disconnect()  # the answers are lost with the connection
    server._bulk.settle()
    # Sent again, the waiting way: the client pops one and ignores any other.
    assert server.sent == [["bulk-1"], ["bulk-2"], ["bulk-2"]]
    assert server.requests_handled == 2
    assert b"bulk-2" in b"".join(client.lrange("reply:test", 0, -1))
