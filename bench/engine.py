"""Engine-direct throughput: the writer in-process, durable group commit, no HTTP.

Opens `--accounts` accounts on a fresh RocksDB shard, funds them, then streams `--transfers`
transfers in client batches of `--batch` commands, keeping `--in-flight` batches queued so the
writer's group commit always has work. Uniform traffic picks both sides at random; `--hot`
sends 80% of transfers through 10 hot accounts; `--uuid-keys` gives each transfer a random UUID
as its idempotency key instead of a counter. Each batch's latency is measured from submit to
acknowledgement (i.e. until its group is synced to disk).
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import time
import uuid
from collections import deque
from pathlib import Path

from bench.stats import percentile
from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import Writer

LEDGER = "BENCH"
HOT_ACCOUNTS = 10
HOT_SHARE = 0.8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transfers", type=int, default=500_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2_000, help="commands per client batch")
    # 8, not 4: with 4 batches in flight the writer sat idle after each group until the
    # client had settled one and sent the next (py-spy: 5% of the writer thread), then
    # committed that batch alone. Alternating runs: 93,500-105,700/s with 4, 100,600-113,700
    # with 8; the batch latency doubles, since twice as many transfers wait in the queue.
    parser.add_argument("--in-flight", type=int, default=8, help="client batches queued")
    parser.add_argument("--hot", action="store_true", help="80%% of transfers on 10 accounts")
    parser.add_argument("--uuid-keys", action="store_true",
                        help="random UUIDs as idempotency keys, as many clients send them "
                             "(default: t-<n>, which RocksDB's memtables insert near each other)")
    parser.add_argument("--no-sync", action="store_true", help="skip the WAL fsync (unsafe)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)


def transfers(account_ids: list[str], count: int, hot: bool, seed: int,
              uuid_keys: bool = False) -> list[Command]:
    rng = random.Random(seed)
    key_rng = random.Random(-seed)  # its own stream: the keys do not change the accounts picked
    hot_ids = account_ids[:HOT_ACCOUNTS]
    out = []
    for i in range(count):
        pool = hot_ids if hot and rng.random() < HOT_SHARE else account_ids
        a = rng.choice(pool)
        b = rng.choice(account_ids)
        while b == a:
            b = rng.choice(account_ids)
        key = str(uuid.UUID(int=key_rng.getrandbits(128), version=4)) if uuid_keys else f"t-{i}"
        out.append(Command("transfer", key, client="bench", account=a, to=b, amount=1))
    return out


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ledgerfs-bench-", dir=args.data_dir) as tmp:
        store = RocksEventStore(Path(tmp) / LEDGER, LEDGER, sync=not args.no_sync)
        writer = Writer(store).start()
        try:
            ids = fund(writer, args.accounts)
            commands = transfers(ids, args.transfers, args.hot, args.seed, args.uuid_keys)
            batches = [commands[i:i + args.batch] for i in range(0, len(commands), args.batch)]
            # The pre-built commands are the client's, not the writer's: out of the cyclic
            # collector's way, as a client sending them over the wire would keep them.
            gc.freeze()
            latencies, seconds, rejected = _stream(writer, batches, args.in_flight)
        finally:
            writer.stop()
            store.close()
    return {
        "scenario": "engine", "transfers": args.transfers, "accounts": args.accounts,
        "hot": args.hot, "uuid_keys": args.uuid_keys, "durable": not args.no_sync,
        "batch": args.batch,
        "in_flight": args.in_flight, "seconds": round(seconds, 3),
        "tps": round(args.transfers / seconds), "rejected": rejected,
        "p50_batch_ms": round(percentile(latencies, 0.50) * 1e3, 2),
        "p95_batch_ms": round(percentile(latencies, 0.95) * 1e3, 2),
        "p99_batch_ms": round(percentile(latencies, 0.99) * 1e3, 2),
    }


def fund(writer: Writer, count: int) -> list[str]:
    dids = [f"did:bench:{i}" for i in range(count)]
    ids = [account_id_for(LEDGER, did) for did in dids]
    opens = [Command("open_account", f"open-{d}", client="bench", did=d) for d in dids]
    mints = [Command("mint", f"mint-{i}", client="bench", account=a, amount=10**12)
             for i, a in enumerate(ids)]
    for commands in (opens, mints):
        for i in range(0, count, 8_000):
            results = writer.execute(Request(commands[i:i + 8_000]))
            assert all(r.ok for r in results), "funding failed"
    return ids


def _stream(writer: Writer, batches: list[list[Command]], in_flight: int):
    pending: deque = deque()
    latencies: list[float] = []
    rejected = 0
    started = time.perf_counter()
    for batch in batches:
        if len(pending) >= in_flight:
            rejected += _settle(pending.popleft(), latencies)
        pending.append((time.perf_counter(), writer.submit(Request(batch))))
    while pending:
        rejected += _settle(pending.popleft(), latencies)
    return latencies, time.perf_counter() - started, rejected


def _settle(item, latencies: list[float]) -> int:
    submitted, future = item
    results = future.result(60)
    latencies.append(time.perf_counter() - submitted)
    return sum(1 for r in results if r.code)  # ResultCode.ok is 0
