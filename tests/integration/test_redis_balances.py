"""Published balances (`redis_balances`): a web process reads current balances from Redis,
without catching its RocksDB secondary up, and still reads its own writes; its event loop
reads them too (`redis_loop`).

A real writer on a RocksDB shard, its `RedisBusServer` on a thread, a `RedisBus` client and a
`FollowerRegistry` as a web process has it, all against the private redis-server.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from pathlib import Path

import pytest
import redis

from ledger.core.commands import Command, Request
from ledger.core.machine import Event, pack_snapshot
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.shards import FollowerRegistry
from ledger.transport import keys
from ledger.transport.redis_balances import HEAD_FIELD, hset_command
from ledger.transport.redis_bus import RedisBus, RedisBusServer, balances_reader, head_reader
from ledger.transport.redis_loop import LoopBalances
from ledger.writer import Writer
from tests.support.services import wait_for

LEDGER = "EUR"
SECOND = 1_000_000_000
NAMES = [f"n{i}" for i in range(8)]


def acc(name: str) -> str:
    return account_id_for(LEDGER, f"did:{name}")


class Stack:
    """Writer, bus server, bus client and follower; the writer's clock is `now[0]`."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.url = redis_url
        self.now = [1_000 * SECOND]
        self.store = RocksEventStore(tmp_path / "shards" / LEDGER, LEDGER)
        self.writer = Writer(self.store, clock=lambda: self.now[0]).start()
        self.server = self.thread = None
        self.serve()
        self.bus = RedisBus(redis_url, timeout_seconds=20)
        self.followers = FollowerRegistry(
            tmp_path / "shards", tmp_path / "secondary", head_reader(redis_url),
            current_source=balances_reader(redis_url),
        )
        self.follower = self.followers.get(LEDGER).store

    def serve(self) -> None:
        self.server = RedisBusServer(self.url, self.writer)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        heartbeat = keys.writer_heartbeat(LEDGER)
        wait_for(lambda: redis.Redis.from_url(self.url).exists(heartbeat), 10, "the writer")

    def execute(self, commands: list[Command]) -> list:
        return self.bus.execute(LEDGER, Request(commands))

    def published(self) -> dict[bytes, bytes]:
        return redis.Redis.from_url(self.url).hgetall(keys.balances(LEDGER))

    def close(self) -> None:
        self.server.stop()
        self.thread.join(10)
        self.bus.close()
        self.followers.close()
        self.store.close()


@pytest.fixture
def stack(tmp_path, redis_url):
    stack = Stack(tmp_path, redis_url)
    stack.execute([Command("open_account", f"open-{n}", did=f"did:{n}") for n in NAMES]
                  + [Command("mint", f"mint-{n}", account=acc(n), amount=1_000) for n in NAMES])
    yield stack
    stack.close()


def test_a_client_reads_its_writes_from_the_published_balances(stack):
    rng = random.Random(7)
    for round_ in range(25):
        commands = []
        for i in range(rng.randint(1, 6)):
            a, b = rng.sample(NAMES, 2)
            kind = rng.choice(("transfer", "transfer", "hold", "mint", "burn"))
            key = f"r{round_}-{i}"
            if kind == "transfer":
                commands.append(Command("transfer", key, account=acc(a), to=acc(b),
                                        amount=rng.randint(1, 300)))
            elif kind == "hold":
                commands.append(Command("hold", key, account=acc(a), beneficiary=acc(b),
                                        amount=rng.randint(1, 100)))
            else:
                commands.append(Command(kind, key, account=acc(a), amount=rng.randint(1, 50)))
        results = stack.execute(commands)
        catch_ups = stack.follower.catch_ups
        head = stack.store.head()[0]
        assert max(r.seq for r in results) <= head
        for name in NAMES:
            # What the writer's own store holds at its head, read without a catch-up.
            assert stack.follower.account_now(acc(name)) == stack.store.account_now(acc(name))
        assert stack.follower.catch_ups == catch_ups
    assert int(stack.published()[HEAD_FIELD]) == stack.store.head()[0]


def test_an_account_not_published_is_read_from_the_store(stack):
    [opened] = stack.execute([Command("open_account", "open-late", did="did:late")])
    redis.Redis.from_url(stack.url).hdel(keys.balances(LEDGER), acc("late"))
    catch_ups = stack.follower.catch_ups
    assert stack.follower.account_now(acc("late")) == ((0, 0, 0, 0, 0, 0), opened.seq)
    assert stack.follower.catch_ups == catch_ups + 1
    nobody = account_id_for(LEDGER, "did:nobody")
    assert stack.follower.account_now(nobody) == (None, stack.store.head()[0])


def test_a_new_bus_server_drops_what_an_earlier_one_published(stack):
    stack.execute([Command("transfer", "t1", account=acc("n0"), to=acc("n1"), amount=5)])
    assert acc("n0").encode() in stack.published()
    stack.server.stop()  # stops the writer too
    stack.thread.join(10)
    # A new writer decides a group before a bus server attaches to it (nobody publishes it) ...
    stack.writer = Writer(stack.store, clock=lambda: stack.now[0]).start()
    stack.writer.execute(Request([Command("transfer", "t2", account=acc("n0"), to=acc("n1"),
                                          amount=7)]))
    # ... so its server must not leave the stale balances readable.
    stack.serve()
    wait_for(lambda: acc("n0").encode() not in stack.published(), 10, "the balances dropped")
    assert stack.follower.account_now(acc("n0")) == ((0, 988, 0, 0, 0, 0),
                                                     stack.store.head()[0])
    stack.execute([Command("transfer", "t3", account=acc("n1"), to=acc("n0"), amount=1)])
    assert stack.follower.account_now(acc("n0")) == ((0, 989, 0, 0, 0, 0),
                                                     stack.store.head()[0])
    assert acc("n0").encode() in stack.published()


def test_expired_holds_are_published_though_no_request_asked(stack):
    [held] = stack.execute([Command("hold", "h1", account=acc("n2"), beneficiary=acc("n3"),
                                    amount=40, expires_at=stack.now[0] + 5 * SECOND)])
    assert stack.follower.account_now(acc("n2"))[0] == (0, 960, 40, 0, 0, 0)
    stack.now[0] += 6 * SECOND  # the idle writer expires the hold on its next tick
    wait_for(lambda: stack.follower.account_now(acc("n2"))[0] == (0, 1_000, 0, 0, 0, 0), 10,
             "the expiry published")
    assert stack.follower.account_now(acc("n2"))[1] == stack.store.head()[0] > held.seq


def test_with_the_published_balances_lost_the_store_answers(stack):
    stack.execute([Command("transfer", "t1", account=acc("n4"), to=acc("n5"), amount=9)])
    redis.Redis.from_url(stack.url).delete(keys.balances(LEDGER))  # as a Redis restart does
    catch_ups = stack.follower.catch_ups
    assert stack.follower.account_now(acc("n4")) == ((0, 991, 0, 0, 0, 0),
                                                     stack.store.head()[0])
    assert stack.follower.catch_ups == catch_ups + 1


def test_a_reply_sent_again_after_a_lost_connection_leaves_no_stale_balance(stack):
    """When the replier's connection is lost, what it wrote last may not have reached Redis:
    a transfer whose balances went with the connection must not read as the balance before
    it once its reply has come (the replier sends them again, before the reply)."""
    stack.execute([Command("transfer", "t1", account=acc("n6"), to=acc("n7"), amount=3)])
    assert acc("n6").encode() in stack.published()
    admin = redis.Redis.from_url(stack.url)
    # The replier's connections (its own, and the one for bulk replies once a bulk request was
    # answered) are those whose last command ended their last write.
    repliers = [c["id"] for c in admin.client_list() if c["cmd"] == "xdel"]
    assert repliers
    for replier in repliers:
        admin.client_kill_filter(_id=replier)
    stack.execute([Command("transfer", "t2", account=acc("n6"), to=acc("n7"), amount=4)])
    assert stack.follower.account_now(acc("n6")) == stack.store.account_now(acc("n6"))
    assert stack.store.account_now(acc("n6"))[0] == (0, 993, 0, 0, 0, 0)


def test_one_hset_leaves_each_account_at_its_latest_snapshot(redis_url):
    # Groups name an account once per event that touched it, oldest first; the last wins.
    def event(seq: int, *pairs: tuple[str, bytes]) -> Event:
        return Event(seq, "transfer", None, b"{}", b"h" * 32, list(pairs))

    groups = [
        [event(1, ("a", b"a1"), ("b", b"b1")), event(2, ("a", b"a2"), ("c", b"c2"))],
        [event(3, ("c", b"c3"), ("a", b"a3"))],
    ]
    connection = redis.Redis.from_url(redis_url)
    connection.execute_command("HSET", "balances", "b", "stale", "d", "d0")
    raw = connection.connection_pool.get_connection()
    raw.send_packed_command([hset_command("balances", groups, 3)])
    assert raw.read_response() == 3  # fields added: a, c and the head
    connection.connection_pool.release(raw)
    assert connection.hgetall("balances") == {
        b"a": b"a3", b"b": b"b1", b"c": b"c3", b"d": b"d0", HEAD_FIELD: b"3"}


# -- the web worker's reads on its event loop (redis_loop) ---------------------------------------

def test_the_event_loop_reads_what_the_store_holds(stack):
    stack.execute([Command("transfer", "t1", account=acc("n6"), to=acc("n7"), amount=11),
                   Command("hold", "h1", account=acc("n7"), beneficiary=acc("n6"), amount=3)])
    redis.Redis.from_url(stack.url).hdel(keys.balances(LEDGER), acc("n5"))
    reader = LoopBalances(stack.url)

    async def reads() -> list:
        return [await reader.read(LEDGER, acc(name)) for name in NAMES]

    answers = dict(zip(NAMES, asyncio.run(reads()), strict=True))
    assert answers.pop("n5") is None  # not in the hash: the caller reads the store instead
    for name, answer in answers.items():
        assert answer == stack.store.account_now(acc(name))
    assert answers["n7"][0] == (0, 1_008, 3, 0, 0, 0)


def test_the_event_loop_reads_the_database_the_url_names(redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/5"
    redis.Redis.from_url(url).hset(keys.balances(LEDGER), mapping={
        "acct": pack_snapshot(0, 42, 0, 0, 0, 0), HEAD_FIELD: 9})
    assert asyncio.run(LoopBalances(url).read(LEDGER, "acct")) == ((0, 42, 0, 0, 0, 0), 9)
    assert asyncio.run(LoopBalances(redis_url).read(LEDGER, "acct")) is None  # database 0


def test_the_event_loop_gives_up_on_a_redis_that_does_not_answer():
    accepted = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
        reader = LoopBalances(f"redis://127.0.0.1:{port}/0", timeout_seconds=0.3)

        async def two_reads() -> tuple:
            started = time.monotonic()
            first = await reader.read(LEDGER, "acct")
            waited = time.monotonic() - started
            return first, waited, await reader.read(LEDGER, "acct")

        first, waited, second = asyncio.run(two_reads())
        assert first is None and 0.25 < waited < 2
        assert second is None  # at once, without a second connection
        assert len(accepted) == 1


def test_the_event_loop_reconnects_after_redis_restarts(redis_server, redis_url):
    publish = redis.Redis.from_url(redis_url).hset
    publish(keys.balances(LEDGER), mapping={"acct": pack_snapshot(0, 1, 0, 0, 0, 0),
                                            HEAD_FIELD: 1})
    reader = LoopBalances(redis_url, retry_seconds=0.0)

    async def around_a_restart() -> list:
        answers = [await reader.read(LEDGER, "acct")]
        await asyncio.to_thread(redis_server.restart)
        await asyncio.to_thread(publish, keys.balances(LEDGER),
                                mapping={"acct": pack_snapshot(0, 2, 0, 0, 0, 0), HEAD_FIELD: 2})
        answers.append(await reader.read(LEDGER, "acct"))  # the old connection is gone
        answers.append(await reader.read(LEDGER, "acct"))
        return answers

    first, during, after = asyncio.run(around_a_restart())
    assert first == ((0, 1, 0, 0, 0, 0), 1)
    assert during in (None, after)
    assert after == ((0, 2, 0, 0, 0, 0), 2)
