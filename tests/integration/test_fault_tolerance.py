"""Failures during load, for real: a writer process SIGKILLed and restarted, Redis SIGKILLed and
restarted empty, PostgreSQL connections cut under the projector.

Clients send batches of transfers over the Redis bus from several threads. A client that gets
a retryable error (bus or writer unavailable, timeout) resends the same commands with the same
idempotency keys until they are acknowledged, as the API tells its clients to. Afterwards:
- every acknowledged command is in the log, at the seq it was acknowledged with, exactly once
  (no idempotency key appears twice, so none was applied twice);
- the hash chain verifies from seq 0 and a replay of the log gives the writer's state;
- the read model in PostgreSQL catches up to the log, balance for balance;
- clients did see retryable errors while the dependency was down (the test provoked them).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import psycopg
import pytest

from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.replay import compare_states, replay
from ledger.transport.redis_bus import HEARTBEAT_TTL_MS
from ledger.writer import WriterError
from tests.support.services import WriterProcess, service_env, wait_for

ACCOUNTS = 40
CLIENTS = 4
BATCH = 25
BUS_TIMEOUT_SECONDS = 4


class Load:
    """Client threads sending transfers until stopped; records what was acknowledged."""

    def __init__(self, url: str, ledger: str) -> None:
        from ledger.transport.redis_bus import RedisBus

        self.ledger = ledger
        self.bus = RedisBus(url, timeout_seconds=BUS_TIMEOUT_SECONDS)
        self.ids = [account_id_for(ledger, f"did:f{i}") for i in range(ACCOUNTS)]
        self.acked: dict[str, int] = {}
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                         for n in range(CLIENTS)]

    def fund(self) -> None:
        commands = [Command("open_account", f"o{i}", did=f"did:f{i}") for i in range(ACCOUNTS)]
        commands += [Command("mint", f"m{i}", account=a, amount=10**9)
                     for i, a in enumerate(self.ids)]
        self._until_acknowledged(commands)

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        self.bus.close()

    def _client(self, number: int) -> None:
        batch = 0
        while not self._stop.is_set():
            commands = [
                Command("transfer", f"c{number}-{batch}-{i}", account=self.ids[(batch + i) %
                                                                               ACCOUNTS],
                        to=self.ids[(batch + i + number + 1) % ACCOUNTS], amount=1)
                for i in range(BATCH)
            ]
            commands = [c for c in commands if c.account != c.to]
            self._until_acknowledged(commands)
            batch += 1

    def _until_acknowledged(self, commands: list[Command]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                results = self.bus.execute(self.ledger, Request(commands))
            except (WriterError, TimeoutError) as exc:
                with self._lock:
                    self.errors[type(exc).__name__] += 1
                time.sleep(0.1)
                continue
            assert all(r.ok for r in results), results
            with self._lock:
                for command, result in zip(commands, results, strict=True):
                    self.acked[command.idempotency_key] = result.seq
            return
        pytest.fail("a request was never acknowledged")

    def wait_for_acks(self, count: int) -> None:
        wait_for(lambda: len(self.acked) >= count, 30, f"{count} acknowledgements")


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_url, redis_server):
    """(env, start_writer(code)); everything started is stopped afterwards."""
    env = service_env(postgres_url, redis_url, tmp_path / "data", LEDGERFS_LOG_LEVEL="WARNING")
    writers: list[WriterProcess] = []

    def start_writer(code: str) -> WriterProcess:
        writer = WriterProcess(code, env, tmp_path / f"writer-{code}.log")
        writers.append(writer.start(redis_server.client()))
        return writer

    yield tmp_path / "data", start_writer
    for writer in writers:
        writer.stop()


def check_log(data_dir: Path, ledger: str, acked: dict[str, int]) -> dict[str, tuple]:
    """Every acknowledged key once at its seq, chain and replay sound; returns the balances."""
    store = RocksEventStore(data_dir / "shards" / ledger, ledger, read_only=True)
    try:
        keys: Counter[str] = Counter()
        seq_of: dict[str, int] = {}
        for event in store.read(-1):
            key = orjson.loads(event.body)["idempotency_key"]
            if key is not None:
                keys[key] += 1
                seq_of[key] = event.seq
        twice = [key for key, count in keys.items() if count > 1]
        assert not twice, f"applied twice: {twice[:5]}"
        missing = [key for key in acked if key not in seq_of]
        assert not missing, f"acknowledged but not in the log: {missing[:5]}"
        moved = [key for key, seq in acked.items() if seq_of[key] != seq]
        assert not moved, f"acknowledged at another seq: {moved[:5]}"
        replayed, _ = replay(store)  # verifies the hash chain from seq 0
        assert compare_states(replayed, store.load()) == []
        head = store.head()[0]
        return {
            account.id: store.account_snapshot_at(account.id, head)[1:]
            for account in replayed.accounts.values()
        }
    finally:
        store.close()


def wait_for_projection(database: str, ledger: str, balances: dict[str, tuple]) -> None:
    def projected() -> bool:
        try:
            with psycopg.connect(database) as db:
                rows = db.execute(
                    "SELECT a.id, a.available, a.held, a.bonded, a.fee, a.promo "
                    "FROM ledger_account a JOIN ledger_ledger l ON l.id = a.ledger_id "
                    "WHERE l.code = %s", [ledger]
                ).fetchall()
        except psycopg.Error:
            return False
        return {row[0]: tuple(row[1:]) for row in rows} == balances

    wait_for(projected, 30, f"the read model of {ledger} to catch up", interval=0.2)


def test_a_killed_writer_loses_nothing_acknowledged_and_applies_nothing_twice(
    cluster, redis_url, postgres_url
):
    data_dir, start_writer = cluster
    writer = start_writer("EUR")
    load = Load(redis_url, "EUR")
    load.fund()
    load.start()
    # A quick restart: requests queued meanwhile, and those the killed writer had read but not
    # answered, are executed by the next one (idempotency makes the re-execution safe).
    # A long outage: once the heartbeat expires clients are refused at once, retryably.
    for down_seconds in (0.2, HEARTBEAT_TTL_MS / 1000 + 1):
        load.wait_for_acks(len(load.acked) + 1_500)
        writer.kill()  # SIGKILL, with batches in flight
        time.sleep(down_seconds)
        writer = start_writer("EUR")
    load.wait_for_acks(len(load.acked) + 1_000)
    load.stop()
    assert load.errors["WriterUnavailable"] > 0, load.errors
    writer.stop()
    balances = check_log(data_dir, "EUR", load.acked)
    start_writer("EUR")  # projects what the killed ones had not
    wait_for_projection(postgres_url, "EUR", balances)


def test_a_redis_restart_loses_nothing_and_clients_get_retryable_errors(
    cluster, redis_url, redis_server, postgres_url
):
    data_dir, start_writer = cluster
    writer = start_writer("USD")
    load = Load(redis_url, "USD")
    load.fund()
    load.start()
    load.wait_for_acks(len(load.acked) + 1_500)
    redis_server.restart(down_seconds=1.0)  # SIGKILL; comes back empty (no persistence)
    load.wait_for_acks(len(load.acked) + 1_500)
    load.stop()
    assert load.errors["BusUnavailable"] > 0, load.errors
    writer.stop()
    balances = check_log(data_dir, "USD", load.acked)
    start_writer("USD")
    wait_for_projection(postgres_url, "USD", balances)


def test_the_projector_catches_up_after_postgres_connections_are_cut(
    cluster, redis_url, postgres_url, postgres_server
):
    data_dir, start_writer = cluster
    writer = start_writer("GBP")
    load = Load(redis_url, "GBP")
    load.fund()
    load.start()
    name = postgres_url.rsplit("/", 1)[1]
    cut = 0
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        for _ in range(5):
            load.wait_for_acks(len(load.acked) + 400)
            cut += admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", [name]
            ).fetchone()[0]
    load.wait_for_acks(len(load.acked) + 400)
    load.stop()
    assert cut > 0, "no connection of the projector was cut"
    # Writes never depended on PostgreSQL, and the running writer's projector recovers by
    # itself: the read model reaches the log's balances without a restart.
    store = RocksEventStore(data_dir / "shards" / "GBP", "GBP",
                            secondary_path=data_dir / "check-secondary")
    store.catch_up()
    head = store.head()[0]
    balances = {account.id: store.account_snapshot_at(account.id, head)[1:]
                for account in store.load().accounts.values()}
    store.close()
    wait_for_projection(postgres_url, "GBP", balances)
    writer.stop()
    check_log(data_dir, "GBP", load.acked)
