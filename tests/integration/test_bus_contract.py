"""The command-bus contract, run against both transports: in-process and Redis.

For Redis the writer side (`RedisBusServer`) runs on a thread of the test process against a
private redis-server; separate writer processes are covered by test_distributed_*.py and
test_fault_*.py. Every test sends real commands to a real writer on a RocksDB shard.
"""

from __future__ import annotations

import threading

import pytest

from ledger.bus import CommandBus, InProcessBus
from ledger.core.codes import ResultCode
from ledger.core.commands import MAX_AMOUNT, Command, Request
from ledger.core.state import account_id_for
from ledger.shards import ShardRegistry
from ledger.writer import WriterError, WriterStopped
from tests.support.services import wait_for

R = ResultCode
LEDGER = "EUR"


def acc(name: str) -> str:
    return account_id_for(LEDGER, f"did:{name}")


def open_and_fund(bus: CommandBus, names: list[str], amount: int = 1_000) -> None:
    commands = [Command("open_account", f"open-{n}", did=f"did:{n}") for n in names]
    commands += [Command("mint", f"mint-{n}", account=acc(n), amount=amount) for n in names]
    results = bus.execute(LEDGER, Request(commands))
    assert all(r.ok for r in results), results


def event_of(result, store):
    """The stored event of a successful result: carried, or read from the log."""
    if result.event is not None:
        return result.event.seq, result.event.data, result.event.hash
    stored = store.get(result.seq)
    return stored.seq, stored.body, stored.hash


class BusContract:
    """Subclasses provide the `bus` fixture (yielding (bus, shard, stop_writer))."""

    def test_one_result_per_command_in_order_and_durable(self, bus):
        bus, shard, _ = bus
        open_and_fund(bus, ["a", "b"])
        results = bus.execute(LEDGER, Request([
            Command("transfer", "t1", account=acc("a"), to=acc("b"), amount=10),
            Command("transfer", "t2", account=acc("a"), to=acc("b"), amount=10**6),
            Command("transfer", "t3", account=acc("b"), to=acc("a"), amount=3),
        ]))
        assert [r.code for r in results] == [R.ok, R.insufficient_funds, R.ok]
        assert results[2].seq == results[0].seq + 1
        for result in (results[0], results[2]):
            seq, data, chain_hash = event_of(result, shard.store)
            stored = shard.store.get(seq)
            assert (stored.body, stored.hash) == (data, chain_hash)
        assert results[0].event.body["idempotency_key"] == "t1"

    def test_a_resent_request_is_answered_from_idempotency_and_applies_nothing(self, bus):
        bus, shard, _ = bus
        open_and_fund(bus, ["a", "b"])
        request = [Command("transfer", "once", account=acc("a"), to=acc("b"), amount=7),
                   Command("transfer", "poor", account=acc("b"), to=acc("a"), amount=10**9)]
        first = bus.execute(LEDGER, Request(request))
        head = shard.store.head()[0]
        again = bus.execute(LEDGER, Request([Command(**_fields(c)) for c in request]))
        assert [(r.code, r.replayed) for r in again] == [(R.ok, True), (R.insufficient_funds,
                                                                          True)]
        assert again[0].seq == first[0].seq
        assert event_of(again[0], shard.store) == event_of(first[0], shard.store)
        assert shard.store.head()[0] == head
        changed = Command("transfer", "once", account=acc("a"), to=acc("b"), amount=8)
        [conflict] = bus.execute(LEDGER, Request([changed]))
        assert conflict.code == R.idempotency_key_reused_with_different_request

    def test_an_atomic_request_applies_all_or_nothing(self, bus):
        bus, shard, _ = bus
        open_and_fund(bus, ["a", "b"], amount=100)
        head = shard.store.head()[0]
        results = bus.execute(LEDGER, Request([
            Command("transfer", "x1", account=acc("a"), to=acc("b"), amount=60),
            Command("transfer", "x2", account=acc("a"), to=acc("b"), amount=60),
        ], atomic=True))
        assert [r.code for r in results] == [R.linked_command_failed, R.insufficient_funds]
        assert shard.store.head()[0] == head

    def test_commands_arrive_as_given_malformed_ones_included(self, bus):
        bus, _, _ = bus
        open_and_fund(bus, ["a", "b"])
        results = bus.execute(LEDGER, Request([
            Command("transfer", "big", account=acc("a"), to=acc("b"), amount=MAX_AMOUNT * 4),
            Command("transfer", "text", account=acc("a"), to=acc("b"), amount="5"),
            Command("transfer", None, account=acc("a"), to=acc("b"), amount=5),
            Command("transfer", "meta", account=acc("a"), to=acc("b"), amount=5,
                    metadata={"order": "A-1", "note": "caf\u00e9"}),
        ]))
        assert [r.code for r in results[:3]] == [
            R.amount_exceeds_maximum, R.amount_must_be_positive, R.idempotency_key_required
        ]
        assert results[3].ok
        assert results[3].event.body["metadata"] == {"order": "A-1", "note": "caf\u00e9"}

    def test_concurrent_clients_all_get_their_own_answers(self, bus):
        bus, shard, _ = bus
        names = [f"u{i}" for i in range(10)]
        open_and_fund(bus, names)
        seqs: list[int] = []
        errors: list[BaseException] = []

        def client(number: int) -> None:
            try:
                for batch in range(10):
                    commands = [
                        Command("transfer", f"c{number}-{batch}-{i}", client=f"k{number}",
                                account=acc(names[(number + i) % 10]),
                                to=acc(names[(number + i + 1) % 10]), amount=1)
                        for i in range(5)
                    ]
                    results = bus.execute(LEDGER, Request(commands))
                    assert all(r.ok and r.event.body["idempotency_key"] == c.idempotency_key
                               for r, c in zip(results, commands, strict=True))
                    seqs.extend(r.seq for r in results)
            except BaseException as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert len(seqs) == len(set(seqs)) == 400
        assert shard.store.head()[0] == max(seqs)

    def test_a_ledger_without_a_running_writer_is_a_retryable_error(self, bus):
        bus, _, stop_writer = bus
        open_and_fund(bus, ["a"])
        stop_writer()
        with pytest.raises(WriterStopped):
            bus.execute(LEDGER, Request([Command("mint", "late", account=acc("a"), amount=1)]))


def _fields(command: Command) -> dict:
    return {name: getattr(command, name) for name in Command.__slots__}


class TestInProcessBus(BusContract):
    @pytest.fixture
    def bus(self, tmp_path):
        registry = ShardRegistry(tmp_path / "shards")
        shard = registry.create(LEDGER)
        yield InProcessBus(registry), shard, shard.writer.stop
        registry.close()


class TestRedisBus(BusContract):
    @pytest.fixture
    def bus(self, tmp_path, redis_url):
        import redis

        from ledger.transport import keys
        from ledger.transport.redis_bus import RedisBus, RedisBusServer

        registry = ShardRegistry(tmp_path / "shards")
        shard = registry.create(LEDGER)
        server = RedisBusServer(redis_url, shard.writer)
        thread = threading.Thread(target=server.serve, daemon=True)
        thread.start()
        heartbeat = keys.writer_heartbeat(LEDGER)
        wait_for(lambda: redis.Redis.from_url(redis_url).exists(heartbeat), 10, "the writer")
        client = RedisBus(redis_url, timeout_seconds=20)

        def stop_writer() -> None:
            server.stop()
            thread.join(10)

        yield client, shard, stop_writer
        stop_writer()
        client.close()
        registry.close()

    def test_the_bus_down_is_a_retryable_error_and_nothing_is_applied(self, bus, redis_server):
        client, shard, _ = bus
        open_and_fund(client, ["a"])
        head = shard.store.head()[0]
        redis_server.kill()
        try:
            with pytest.raises(WriterError) as raised:
                client.execute(LEDGER, Request([Command("mint", "m", account=acc("a"),
                                                        amount=1)]))
            assert type(raised.value).__name__ == "BusUnavailable"
            assert shard.store.head()[0] == head
        finally:
            redis_server.start()

    def test_redis_emptied_under_a_waiting_writer_loses_no_later_command(self, bus,
                                                                        redis_server):
        """FLUSHALL while the writer blocks reading its stream (idle, as here) unblocks it with
        an error; it must recreate its group and serve on, not stop."""
        import redis

        from ledger.transport import keys

        client, shard, _ = bus
        open_and_fund(client, ["a"])
        head = shard.store.head()[0]
        redis_server.client().flushall()
        heartbeat = keys.writer_heartbeat(LEDGER)
        wait_for(lambda: redis.Redis.from_url(redis_server.url).exists(heartbeat), 10,
                 "the writer's heartbeat after the flush")
        [minted] = client.execute(LEDGER, Request([Command("mint", "after-flush",
                                                            account=acc("a"), amount=5)]))
        assert minted.ok and minted.seq == head + 1
