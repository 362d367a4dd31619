"""The writer's bus server puts small requests first, on the way in and on the way out: a lone
payment sent beside bulk batches is handed to the writer before their decoding, and its reply
is sent without the bulk replies and balances queued behind it (python -m bench
http-distributed: a single transfer under load waited tens of milliseconds for both)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import redis

from ledger.core.commands import Command, Request
from ledger.core.machine import Event
from ledger.transport import codec, keys
from ledger.transport.redis_bus import RedisBusServer, _Durable
from tests.support.services import wait_for

LEDGER = "EUR"


class RecordingWriter:
    """Stands in for a writer: records what it is handed, in order, and never answers."""

    ledger = LEDGER
    store = None
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

    def _send(self, batch: list) -> None:
        self.sent.append(["durable" if type(item) is _Durable else item[1] for item in batch])
        super()._send(batch)


def reply(request_id: str, size: int) -> tuple:
    future: Future = Future()
    future.set_result([])
    return (f"{len(request_id)}-0", request_id, "reply:test", future, size <= 10)


def test_a_small_requests_reply_is_sent_before_what_queued_behind_it(redis_url):
    server = RecordingServer(redis_url, RecordingWriter())
    event = Event(1, "transfer", None, b"{}", b"h" * 32, [("acc_eur_a", b"s" * 41)])
    for item in (_Durable([event], 1), reply("bulk-1", 1_000), reply("single", 1),
                 _Durable([event], 2), reply("bulk-2", 1_000), reply("small", 10), None):
        server._replies.put(item)
    server._reply_loop()
    assert server.sent == [["durable", "bulk-1", "single"], ["durable", "bulk-2", "small"]]
