"""LedgerFS over HTTP in distributed mode: uvicorn workers, Redis bus, one writer process per
shard, PostgreSQL read model, all on this machine.

Starts a private redis-server, reached through its Unix socket (or uses REDIS_URL when
redis-server is not installed), a fresh
PostgreSQL database `ledgerfs_bench_http_<pid>` on DATABASE_URL's server (or 127.0.0.1:5432;
dropped at the end, and its own so that two runs at once cannot drop each other's),
`--shards` writer processes (`manage.py ledger_writer`, durable: synced WAL, each projecting its
shard into PostgreSQL; with `--projector process` they leave that to one `manage.py
ledger_projector` process) and uvicorn with `--web-workers` workers. Opens and funds
`--accounts` accounts per shard through the API, then for `--seconds`: `--writers` clients post
batches of `--batch` transfers back to back (spread over the shards), or at `--rate` transfers/s
on a fixed schedule; one client posts single transfers (write latency under load), and a
process of its own reads balances at `--read-rate` reads/s (read latency under load,
bench/paced_reader.py). `--hot` sends 80% of transfers through 10 accounts. The same load runs
`--warmup-seconds` before it is measured: the first requests meet cold processes (measured: at
10,000 transfers/s offered, the first batch took 1.3 s and the schedule caught up 1.5 s later).
After the load it reports how far the read model was behind the log and how long it then took to
catch up. The writing clients run in this process; they and the reader share the machine's
cores with the server processes.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from bench.client import Client, accounts_open, single_transfer
from bench.cpu import CpuMeter, command_starts_with, with_descendants
from bench.paced_reader import DEFAULT_RATE, PacedReader
from bench.pg_baseline import database_url, server_url
from bench.stats import Schedule, ms, run_for
from config.cpus import ENV, place_other

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "ledgerfs_bench_http"
START_TIMEOUT_SECONDS = 60
HOT_ACCOUNTS = 10
HOT_SHARE = 0.8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--accounts", type=int, default=10_000, help="per shard")
    parser.add_argument("--batch", type=int, default=1_000, help="transfers per request")
    parser.add_argument("--writers", type=int, default=4, help="concurrent batch clients")
    parser.add_argument("--rate", type=int, default=0,
                        help="offered transfers/s of the batch clients, on a fixed schedule "
                             "(default 0: back to back, as fast as the stack answers)")
    parser.add_argument("--warmup-seconds", type=float, default=3.0,
                        help="load before the measured `--seconds`, not counted")
    parser.add_argument("--read-rate", type=float, default=DEFAULT_RATE,
                        help="balance reads/s, on a fixed schedule from a process of their own "
                             "(bench/paced_reader.py)")
    parser.add_argument("--web-workers", type=int, default=3, help="uvicorn workers")
    parser.add_argument("--shards", type=int, default=1, choices=(1, 2))
    parser.add_argument("--hot", action="store_true", help="80%% of transfers on 10 accounts")
    parser.add_argument("--projector", choices=["writer", "process"], default="writer",
                        help="who projects into PostgreSQL: each writer process (as the Procfile)"
                             " or one ledger_projector process")
    parser.add_argument("--writer-cpus", default="auto",
                        help="LEDGERFS_WRITER_CPUS of the stack (config/cpus.py); this process "
                             "and its Redis keep off them too. auto: the last CPU with one "
                             "shard on 2 or more cores, else none; none: no pinning")
    parser.add_argument("--server-url", default=None, help="PostgreSQL server URL")
    parser.add_argument("--seed", type=int, default=1)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(condition, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:] if log else ''}")
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


PASSED_SETTINGS = ("LEDGERFS_FAST_LANE",)
"""The caller's LEDGERFS_ settings the stack keeps, for comparisons (`LEDGERFS_FAST_LANE=0`);
it sets its own data directory, bus and log level."""


class Stack:
    """The distributed processes of one benchmark run; `close()` stops them all."""

    def __init__(self, tmp: Path, ledgers: list[str], web_workers: int, server: str,
                 projector: str = "writer", writer_cpus: str | None = None) -> None:
        self.tmp = tmp
        self.processes: list[subprocess.Popen] = []
        cpus = {ENV: writer_cpus} if writer_cpus else {}
        # The pids of each kind of process started here, for `cpu_meter`.
        self.roles: dict[str, list[int]] = {"writer": [], "projector": [], "web": [], "redis": []}
        self.redis_url = self._redis()
        self.server = server
        self.database_name = f"{DATABASE}_{os.getpid()}"
        self._database("DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}")
        self.database = database_url(server, self.database_name)
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith("LEDGERFS_") or k in PASSED_SETTINGS},
            "DATABASE_URL": self.database, "REDIS_URL": self.redis_url,
            "LEDGERFS_DATA_DIR": str(tmp / "data"), "LEDGERFS_LOG_LEVEL": "WARNING",
            "LEDGERFS_BUS": "redis", "PYTHONPATH": str(ROOT), **cpus,
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput"], env=self.env, check=True,
                       capture_output=True)
        created = subprocess.run(
            [*manage, "apikey", "create", "--name", "bench", "--scopes", "read,write,admin"],
            env=self.env, check=True, capture_output=True, text=True,
        )
        self.key = created.stdout.strip().splitlines()[-1]
        client = redis.Redis.from_url(self.redis_url)
        # As the Procfile, each writer projects its shard; with `--projector process`, the
        # writers leave that to one `ledger_projector` process.
        own_projector = projector == "process"
        for ledger in ledgers:
            log = tmp / f"writer-{ledger}.log"
            process = self._start([*manage, "ledger_writer", "--ledger", ledger,
                                   *(["--no-project"] if own_projector else [])], log)
            self.roles["writer"].append(process.pid)
            _wait(lambda ledger=ledger: client.exists(f"ledgerfs:writer:{ledger}"),
                  f"the writer of {ledger}", process, log)
        if own_projector:
            self.roles["projector"].append(
                self._start([*manage, "ledger_projector"], tmp / "projector.log").pid)
        self.port = _free_port()
        log = tmp / "web.log"
        # As the Procfile: one SO_REUSEPORT socket per worker (config/web_workers.py).
        process = self._start(
            [sys.executable, "-m", "config.web_workers", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(web_workers), "--log-level", "warning"],
            log)
        self.roles["web"].append(process.pid)
        _wait(lambda: Client(self.port, self.key).call("GET", "/api/v1/ledgers")[0] == 200,
              "the web process", process, log)

    def _redis(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        sock = self.tmp / "redis.sock"
        self.processes.append(subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        self.roles["redis"].append(self.processes[-1].pid)
        # Every process of the stack reaches it through its socket (config/redis_urls.py).
        url = f"unix://{sock}?db=0"
        _wait(lambda: redis.Redis.from_url(url).ping(), "redis-server")
        return url

    def cpu_meter(self, clients: tuple[int, ...] = ()) -> CpuMeter:
        """CPU of the stack's processes by kind, of every PostgreSQL process (the server is
        shared, but nothing else runs on it during a benchmark) and of the clients: this
        process, whose threads are the writing clients, and the `clients` processes."""
        groups = {
            "web": [pid for web in self.roles["web"] for pid in with_descendants(web)],
            "writer": self.roles["writer"],
            "projector": self.roles["projector"],
            "postgres": command_starts_with(b"postgres"),
            "redis": self.roles["redis"],
            "client": [os.getpid(), *clients],
        }
        return CpuMeter({name: pids for name, pids in groups.items() if pids})

    def _start(self, command: list[str], log_path: Path) -> subprocess.Popen:
        with log_path.open("w") as log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def print_logs(self, lines: int = 40) -> None:
        """The end of each process's log, on stderr: a failed run's temporary directory, and
        the servers' own account of the failure with it, is gone once the run returns."""
        for log in sorted(self.tmp.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            print(f"--- {log.name} (last {len(tail)} lines)", *tail, sep="\n", file=sys.stderr)

    def _database(self, *statements: str) -> None:
        with psycopg.connect(database_url(self.server, "postgres"), autocommit=True) as admin:
            for statement in statements:
                admin.execute(statement.format(self.database_name))

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._database("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _setup(client: Client, ledger: str, count: int) -> list[str]:
    return accounts_open(client, ledger, [f"did:bench:{i}" for i in range(count)], 10**12)


_ITEM = b'{"from":"%s","to":"%s","amount":1,"idempotency_key":"%s-%d"}'


def batch_body(ledger: str, ids: list[bytes], rng: random.Random, prefix: bytes, count: int,
               hot: bool) -> bytes:
    last = len(ids) - 1
    items = []
    for i in range(count):
        a = rng.randrange(HOT_ACCOUNTS) if hot and rng.random() < HOT_SHARE else rng.randint(
            0, last)
        b = rng.randint(0, last - 1)
        items.append(_ITEM % (ids[a], ids[b + (b >= a)], prefix, i))
    return b'{"ledger":"%s","transfers":[%s]}' % (ledger.encode(), b",".join(items))


def writer_cpus(choice: str, shards: int) -> str | None:
    """The stack's LEDGERFS_WRITER_CPUS for `--writer-cpus`: with "auto", a core of its own for
    a single writer (two writers on two cores would leave the web none)."""
    if choice == "none":
        return None
    if choice != "auto":
        return choice
    cores = os.cpu_count() or 1
    return str(cores - 1) if shards == 1 and cores >= 2 else None


@contextmanager
def _off_cpus(cpus: str | None):
    """Keeps this thread, and the client threads and the Redis it starts, off the writers'
    CPUs meanwhile, as the stack's own processes keep off them."""
    saved = os.sched_getaffinity(0)
    place_other({ENV: cpus} if cpus else {})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def run(args: argparse.Namespace) -> dict:
    ledgers = ["BENCH", "BENCHB"][:args.shards]
    pinned = writer_cpus(args.writer_cpus, args.shards)
    with tempfile.TemporaryDirectory(prefix="ledgerfs-bench-dist-") as tmp, _off_cpus(pinned):
        stack = Stack(Path(tmp), ledgers, args.web_workers, server_url(args.server_url),
                      args.projector, pinned)
        try:
            setup = Client(stack.port, stack.key)
            ids = {ledger: _setup(setup, ledger, args.accounts) for ledger in ledgers}
            _, setup_projected = _projection_catch_up(stack, setup, ledgers)
            result = _load(stack, ids, args)
            behind, caught_up = _projection_catch_up(stack, Client(stack.port, stack.key),
                                                     ledgers)
            result.update(setup_projection_s=setup_projected, projection_backlog_events=behind,
                          projection_catch_up_s=caught_up)
        except BaseException:
            stack.print_logs()
            raise
        finally:
            stack.close()
    return {"scenario": "http-distributed", "shards": args.shards, "hot": args.hot,
            "durable": True, "web_workers": args.web_workers, "projector": args.projector,
            "writer_cpus": pinned, **result}


def _projection_catch_up(stack: Stack, client: Client, ledgers: list[str]) -> tuple[int, float]:
    """How far the read model is behind the log now, in events, and how long it then takes
    to reach it, in seconds.

    Asked twice: after the set-up, whose 10,000 accounts are then projected before the load
    starts (opening them is not what the benchmark measures, and their projection, most of a
    round's work on this machine, otherwise ran during it); and when the load stopped, since
    a backlog growing under load would not show in the write figures."""
    heads = {ledger: client.json("GET", f"/api/v1/ledgers/{ledger}")["head_seq"]
             for ledger in ledgers}

    def cursors() -> dict[str, int]:
        with psycopg.connect(stack.database) as db:
            return dict(db.execute(
                "SELECT l.code, c.last_seq FROM ledger_projectioncursor c "
                "JOIN ledger_ledger l ON l.id = c.ledger_id WHERE l.code = ANY(%s)", [ledgers]
            ).fetchall())

    started = time.perf_counter()
    behind = sum(heads[ledger] - cursors().get(ledger, -1) for ledger in ledgers)
    while any(cursors().get(ledger, -1) < heads[ledger] for ledger in ledgers):
        if time.perf_counter() - started > 120:
            raise RuntimeError("the read model did not catch up within 120 s")
        time.sleep(0.1)
    return behind, round(time.perf_counter() - started, 2)


def _load(stack: Stack, ids: dict[str, list[str]], args: argparse.Namespace) -> dict:
    ledgers = list(ids)
    id_bytes = {ledger: [a.encode() for a in accounts] for ledger, accounts in ids.items()}
    stop = threading.Event()
    lock = threading.Lock()
    # What started once the warm-up was over counts (run_for's on_measure sets the start).
    measured_from = [float("inf")]
    totals = {"ok": 0, "sent": 0}
    batch_latencies: list[float] = []
    write_latencies: list[float] = []
    errors: list[str] = []
    # On a schedule, each client sends a batch every `interval` seconds, the clients evenly
    # staggered.
    interval = args.writers * args.batch / args.rate if args.rate else 0.0

    def writer(number: int) -> None:
        client = Client(stack.port, stack.key)
        rng = random.Random(args.seed * 1000 + number)
        ledger = ledgers[number % len(ledgers)]
        schedule = Schedule(interval, interval * number / args.writers)
        batch = 0
        while True:
            body = batch_body(ledger, id_bytes[ledger], rng, b"w%d-b%d" % (number, batch),
                              args.batch, args.hot)
            batch += 1
            started = schedule.next_start(stop)
            if started is None:
                return
            status, data = client.call("POST", "/api/v1/transfers", body)
            elapsed = time.perf_counter() - started
            if status != 200:
                errors.append(f"batch -> {status}: {data[:200]!r}")
                return
            if started >= measured_from[0]:
                with lock:
                    batch_latencies.append(elapsed)
                    totals["ok"] += data.count(b'"status":"ok"')
                    totals["sent"] += args.batch

    def single_writer() -> None:
        client = Client(stack.port, stack.key)
        rng = random.Random(args.seed + 7)
        sent = 0
        try:
            while not stop.is_set():
                started = time.perf_counter()
                elapsed = single_transfer(client, ids[ledgers[0]], rng, f"loaded-{sent}")
                sent += 1
                if started >= measured_from[0]:
                    write_latencies.append(elapsed)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
    threads.append(threading.Thread(target=single_writer))
    reader = PacedReader(stack.port, stack.key, ids[ledgers[0]], args.read_rate, args.seed + 11)
    meter = stack.cpu_meter(clients=(reader.process.pid,))

    def measure() -> None:
        meter.start()
        reader.measure()
        measured_from[0] = time.perf_counter()

    try:
        seconds = run_for(threads, args.seconds, stop, errors, args.warmup_seconds, measure)
    finally:
        read_latencies = reader.finish()
    cores = meter.stop()
    transfers = totals["sent"] + len(write_latencies)
    return {
        "cpu_cores": cores,
        "cpu_us_per_transfer": {
            name: round(core * seconds / transfers * 1e6, 1)
            for name, core in {**cores, "total": sum(cores.values())}.items()
        },
        "seconds": round(seconds, 2), "warmup_seconds": args.warmup_seconds,
        "accounts": args.accounts, "batch": args.batch, "writers": args.writers,
        "offered_tps": args.rate or None, "transfers": transfers,
        "rejected": totals["sent"] - totals["ok"], "tps": round(transfers / seconds),
        "batches": len(batch_latencies),
        "p50_batch_ms": ms(batch_latencies, 0.50), "p95_batch_ms": ms(batch_latencies, 0.95),
        "loaded_p50_ms": ms(write_latencies, 0.50), "loaded_p95_ms": ms(write_latencies, 0.95),
        "loaded_p99_ms": ms(write_latencies, 0.99),
        "balance_reads": len(read_latencies),
        "balance_p50_ms": ms(read_latencies, 0.50), "balance_p95_ms": ms(read_latencies, 0.95),
        "balance_p99_ms": ms(read_latencies, 0.99), "balance_max_ms": ms(read_latencies, 1.0),
        "read_rate": args.read_rate,
    }
