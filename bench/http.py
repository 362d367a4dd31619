"""HTTP API throughput and latency: `POST /api/v1/transfers` and `GET /api/v1/balances`.

Starts ONE uvicorn process on a fresh data directory (in embedded mode the writer lives in the
web process, and a shard's RocksDB admits one writing process), creates a ledger, opens and
funds `--accounts` accounts through the API, then measures in two phases:
1. idle, `--latency-seconds`: single-transfer requests one after another, then balance reads
   one after another (the latency of one request when the server is not saturated);
2. loaded, `--seconds`: `--writers` clients post batches of `--batch` transfers back to back
   (keep-alive HTTP/1.1), while one client posts single transfers and a process of its own
   reads balances at `--read-rate` reads/s (bench/paced_reader.py).
`tps` counts transfers acknowledged in phase 2; `p50_ms`.. are single-transfer latencies of
phase 1; `loaded_*` and `balance_*` are latencies under the phase-2 write load. The writing
clients run in this process; they and the reader compete with the server for the same cores.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.client import Client, accounts_open, balance_read, single_transfer
from bench.paced_reader import DEFAULT_RATE, PacedReader
from bench.stats import ms, run_for

LEDGER = "BENCH"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load phase")
    parser.add_argument("--latency-seconds", type=float, default=5.0,
                        help="length of each idle latency measurement")
    parser.add_argument("--settle-seconds", type=float, default=10.0,
                        help="pause after the setup, so background projection catches up")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000, help="transfers per batch request")
    parser.add_argument("--writers", type=int, default=4, help="concurrent batch clients")
    parser.add_argument(
        "--projector", choices=("thread", "manual"), default="thread",
        help="thread: the server projects read models and seals as `make run` does; manual: "
             "neither (isolates the API path)",
    )
    parser.add_argument("--read-rate", type=float, default=DEFAULT_RATE,
                        help="balance reads/s under the load, on a fixed schedule from a process "
                             "of their own (bench/paced_reader.py)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ledgerfs-bench-http-", dir=args.data_dir) as tmp:
        server, port, key = _start_server(Path(tmp), args.projector)
        try:
            ids = _setup(Client(port, key), args.accounts)
            time.sleep(args.settle_seconds)
            idle = _idle(port, key, ids, args)
            return {**_load(port, key, ids, args), **idle}
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _start_server(data_dir: Path, projector: str) -> tuple[subprocess.Popen, int, str]:
    env = {**os.environ, "LEDGERFS_DATA_DIR": str(data_dir), "LEDGERFS_LOG_LEVEL": "WARNING",
           "LEDGERFS_PROJECTOR": projector}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    created = subprocess.run(
        [*manage, "apikey", "create", "--name", "bench", "--scopes", "read,write,admin"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (data_dir / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, port, key
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start")


def _setup(client: Client, count: int) -> list[str]:
    client.json("POST", "/api/v1/ledgers", {"code": LEDGER, "scale": 2})
    return accounts_open(client, LEDGER, [f"did:bench:{i}" for i in range(count)], 10**12)


_ITEM = b'{"from":"%s","to":"%s","amount":1,"idempotency_key":"%s-%d"}'


def _batch_body(ids: list[bytes], rng: random.Random, prefix: bytes, count: int) -> bytes:
    """A batch of `count` transfers between random distinct accounts, built as bytes (the
    client shares the machine with the server, so it must stay cheap)."""
    last = len(ids) - 1
    items = []
    for i in range(count):
        a = rng.randint(0, last)
        b = rng.randint(0, last - 1)
        items.append(_ITEM % (ids[a], ids[b + (b >= a)], prefix, i))
    return b'{"ledger":"%s","transfers":[%s]}' % (LEDGER.encode(), b",".join(items))


def _idle(port: int, key: str, ids: list[str], args: argparse.Namespace) -> dict:
    client = Client(port, key)
    rng = random.Random(args.seed + 1)
    writes: list[float] = []
    deadline = time.perf_counter() + args.latency_seconds
    while time.perf_counter() < deadline:
        writes.append(single_transfer(client, ids, rng, f"idle-{len(writes)}"))
    reads: list[float] = []
    deadline = time.perf_counter() + args.latency_seconds
    while time.perf_counter() < deadline:
        reads.append(balance_read(client, ids, rng))
    return {
        "single_writes": len(writes), "p50_ms": ms(writes, 0.50),
        "p95_ms": ms(writes, 0.95), "p99_ms": ms(writes, 0.99),
        "idle_balance_p50_ms": ms(reads, 0.50), "idle_balance_p95_ms": ms(reads, 0.95),
        "idle_balance_p99_ms": ms(reads, 0.99),
    }


def _load(port: int, key: str, ids: list[str], args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    id_bytes = [account_id.encode() for account_id in ids]
    stop = threading.Event()
    totals = {"ok": 0, "rejected": 0}
    lock = threading.Lock()
    batch_latencies: list[float] = []
    write_latencies: list[float] = []
    errors: list[str] = []

    def writer(w: int) -> None:
        client = Client(port, key)
        writer_rng = random.Random(args.seed * 1000 + w)
        b = 0
        while not stop.is_set():
            body = _batch_body(id_bytes, writer_rng, b"w%d-b%d" % (w, b), args.batch)
            b += 1
            started = time.perf_counter()
            status, data = client.call("POST", "/api/v1/transfers", body)
            elapsed = time.perf_counter() - started
            if status != 200:
                errors.append(f"batch -> {status}: {data[:200]!r}")
                return
            ok = data.count(b'"status":"ok"')
            with lock:
                batch_latencies.append(elapsed)
                totals["ok"] += ok
                totals["rejected"] += args.batch - ok

    def single_writer() -> None:
        client = Client(port, key)
        try:
            while not stop.is_set():
                write_latencies.append(single_transfer(
                    client, ids, rng, f"loaded-{len(write_latencies)}"))
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    threads.append(threading.Thread(target=single_writer))
    reader = PacedReader(port, key, ids, args.read_rate, args.seed + 11)
    try:
        seconds = run_for(threads, args.seconds, stop, errors, on_measure=reader.measure)
    finally:
        read_latencies = reader.finish()
    transfers = totals["ok"] + totals["rejected"] + len(write_latencies)

    return {
        "scenario": "http", "seconds": round(seconds, 2), "accounts": len(ids),
        "batch": args.batch, "writers": args.writers, "projector": args.projector,
        "transfers": transfers, "rejected": totals["rejected"],
        "tps": round(transfers / seconds), "batches": len(batch_latencies),
        "p50_batch_ms": ms(batch_latencies, 0.50), "p95_batch_ms": ms(batch_latencies, 0.95),
        "loaded_single_writes": len(write_latencies),
        "loaded_p50_ms": ms(write_latencies, 0.50), "loaded_p95_ms": ms(write_latencies, 0.95),
        "loaded_p99_ms": ms(write_latencies, 0.99),
        "balance_reads": len(read_latencies), "read_rate": args.read_rate,
        "balance_p50_ms": ms(read_latencies, 0.50), "balance_p95_ms": ms(read_latencies, 0.95),
        "balance_p99_ms": ms(read_latencies, 0.99),
    }
