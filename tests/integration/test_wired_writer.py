"""The writer process's wiring (`ledger_writer.WiredWriter`): its stream publisher takes the
durable groups from the writer's memory, not from the log.

Publishing from the log gives the same stream, only slower, so no test of the stream's contents
could tell the two apart. This one counts the publisher's reads of the store: the real writer,
bus server and publisher against the private Redis, with the store's `read` counted.
"""

from __future__ import annotations

import threading

import pytest
import redis

from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.management.commands.ledger_writer import WiredWriter
from ledger.transport import keys
from ledger.transport.redis_bus import RedisBus
from ledger.transport.redis_stream import RedisEventStream
from tests.support.services import wait_for

LEDGER = "EUR"


@pytest.fixture
def process(settings, tmp_path, redis_url):
    settings.LEDGERFS_DATA_DIR = str(tmp_path)
    process = WiredWriter(LEDGER, redis_url, project=False)
    serving = threading.Thread(target=process.server.serve, daemon=True)
    serving.start()
    heartbeat = keys.writer_heartbeat(LEDGER)
    wait_for(lambda: redis.Redis.from_url(redis_url).exists(heartbeat), 10, "the writer")
    yield process
    process.server.stop()
    serving.join(10)
    process.close()


def test_the_stream_publisher_takes_the_groups_from_memory(process, redis_url):
    store = process.shard.store
    reads = []
    read = store.read
    store.read = lambda *args, **kwargs: reads.append(args) or read(*args, **kwargs)
    dids = [f"did:{n}" for n in range(4)]
    ids = [account_id_for(LEDGER, did) for did in dids]
    commands = [Command("open_account", f"open-{d}", did=d) for d in dids]
    commands += [Command("mint", f"mint-{a}", account=a, amount=100) for a in ids]
    commands += [Command("transfer", f"t-{i}", account=ids[i % 4], to=ids[(i + 1) % 4],
                         amount=1) for i in range(40)]
    bus = RedisBus(redis_url, timeout_seconds=20)
    try:
        for start in range(0, len(commands), 8):  # several groups
            results = bus.execute(LEDGER, Request(commands[start:start + 8]))
            assert all(result.ok for result in results)
    finally:
        bus.close()

    head = store.head()[0]
    stream = RedisEventStream(redis_url)
    try:
        wait_for(lambda: stream.last_seq(LEDGER) == head, 10, "the stream to reach the head")
        published = stream.read(LEDGER, head - len(commands), 1.0)
    finally:
        stream.close()
    assert reads == []
    assert len(published) == len(commands)
    assert published == list(read(head - len(commands)))
