"""Streaming: event-to-WebSocket and event-to-webhook latency under transfer load, and the event
rate one stream consumer keeps up with.

`--mode embedded` (default) serves everything from ONE uvicorn process as `make run` does:
writer, relay, monitor (AML screening of every transfer, webhook outbox, totals, all in
SQLite), WebSockets and webhook delivery threads. `--mode distributed` uses the distributed
stack of `bench http-distributed` (PostgreSQL, Redis, a writer process, uvicorn workers) plus
`manage.py monitor` and a Celery worker that POSTs the webhooks.

Phases:
1. load, `--seconds`: `--writers` clients post batches of `--batch` transfers at `--rate`
   transfers/s in total (0: as fast as the server takes them); a probe posts a `mint` of 1
   every 1/`--probe-hz` s. One WebSocket client (`/ws/events/?ledger=BENCH`, a user who may
   view every account, in its own process) receives every event; a webhook subscription on
   `mint` delivers the probes to a receiver (in its own process). Latency = arrival time minus
   the event's `ts` (the writer's clock when it decided the event; same host clock), so it
   includes the fsync, the stream, the channel layer or Celery, and the client.
2. drain: how long after the load the WebSocket client, the monitor and the webhooks need to
   reach the last committed event (a consumer that keeps up drains at once).
3. backlog: a new WebSocket client asks for the whole log (`after_seq=-1`): the rate one
   consumer reads events at when it is not waiting for them.
Everything shares this machine's cores with the load generator.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

from bench.client import Client, accounts_open
from bench.stats import percentile

LEDGER = "BENCH"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 60
FUND_MINOR = 400_000
"""Each account's funding: under the AML thresholds (no alert storm at set-up)."""
WARM_UP_SECONDS = 2.0
"""Events of the load's first seconds are left out of the latency figures."""
DRAIN_TIMEOUT_SECONDS = 120.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("embedded", "distributed"), default="embedded")
    parser.add_argument("--rate", type=int, default=10_000,
                        help="target transfers/s of the load (0: as fast as possible)")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the load")
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=500, help="transfers per request")
    parser.add_argument("--writers", type=int, default=4, help="concurrent batch clients")
    parser.add_argument("--probe-hz", type=float, default=10.0, help="webhook probes per s")
    parser.add_argument(
        "--projector", choices=("thread", "manual"), default="thread",
        help="embedded mode: thread projects the read models as `make run` does; manual "
             "leaves them (and their SQLite writes) out")
    parser.add_argument("--web-workers", type=int, default=2, help="distributed mode")
    parser.add_argument("--server-url", default=None, help="PostgreSQL (distributed mode)")
    parser.add_argument("--seed", type=int, default=1)


# -- the servers ------------------------------------------------------------------------------

def _manage(env: dict, *args: str, extra: dict | None = None) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                          env={**env, **(extra or {})}, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _operator_key(env: dict) -> str:
    """A key acting as a superuser: sees every account, may manage webhooks."""
    _manage(env, "createsuperuser", "--noinput", "--username", "bench", "--email",
            "bench@example.com", extra={"DJANGO_SUPERUSER_PASSWORD": "bench-password-0"})
    return _manage(env, "apikey", "create", "--name", "bench-operator", "--scopes",
                   "read,write,admin", "--user", "bench").strip().splitlines()[-1]


def _wait(condition, what: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


class EmbeddedServer:
    def __init__(self, tmp: Path, projector: str) -> None:
        from bench.distributed import _free_port

        self.data_dir = tmp / "data"
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith(("LEDGERFS_", "REDIS_URL", "DATABASE_URL"))},
            "LEDGERFS_DATA_DIR": str(self.data_dir), "LEDGERFS_LOG_LEVEL": "WARNING",
            "LEDGERFS_MONITOR": "thread", "LEDGERFS_PROJECTOR": projector,
            "LEDGERFS_BEAT": "thread",
            "LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1", "PYTHONPATH": str(ROOT),
        }
        _manage(self.env, "migrate", "--noinput")
        self.key = _operator_key(self.env)
        self.port = _free_port()
        self.log = (tmp / "server.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        _wait(lambda: Client(self.port, self.key).call("GET", "/healthz")[0] == 200,
              "the server")

    def subscribe(self, client: Client, url: str) -> None:
        subscription = client.json("POST", "/api/ops/webhooks/", {
            "name": "bench", "url": url, "event_types": ["mint"], "ledger": LEDGER})
        assert subscription["active"], subscription

    def monitored_seq(self) -> int:
        with sqlite3.connect(f"file:{self.data_dir / 'ledgerfs.sqlite3'}?mode=ro",
                             uri=True, timeout=5) as db:
            row = db.execute("SELECT last_seq FROM monitoring_monitorstate WHERE ledger = ?",
                             (LEDGER,)).fetchone()
        return row[0] if row else -1

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class DistributedServer:
    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        from bench.distributed import Stack
        from bench.pg_baseline import server_url

        self.stack = Stack(tmp, [LEDGER], args.web_workers, server_url(args.server_url))
        self.stack.env["LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "1"
        self.env = self.stack.env
        self.port = self.stack.port
        self.key = _operator_key(self.env)
        manage = [sys.executable, str(ROOT / "manage.py")]
        log = tmp / "monitor.log"
        self.stack._start([*manage, "monitor"], log)
        _wait(lambda: "monitor up" in log.read_text(), "the monitor")
        log = tmp / "worker.log"
        self.stack._start([sys.executable, "-m", "celery", "-A", "config", "worker",
                           "--concurrency", "2", "--without-gossip", "--without-mingle",
                           "--without-heartbeat", "--loglevel", "INFO"], log)
        _wait(lambda: " ready." in log.read_text(), "the Celery worker")

    def subscribe(self, client: Client, url: str) -> None:
        # The stack's web processes refuse a loopback receiver (they are not started with
        # LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS): store it directly; the worker allows it.
        _manage(self.env, "shell", "-c", (
            "from webhooks.models import Subscription; Subscription.objects.create("
            f"name='bench', url='{url}', event_types=['mint'], ledger='{LEDGER}')"))

    def monitored_seq(self) -> int:
        import psycopg

        with psycopg.connect(self.stack.database) as db:
            row = db.execute("SELECT last_seq FROM monitoring_monitorstate WHERE ledger = %s",
                             (LEDGER,)).fetchone()
        return row[0] if row else -1

    def close(self) -> None:
        self.stack.close()


# -- the WebSocket client and the webhook receiver (own processes) -----------------------------

def _consumer_main(url: str, key: str, ready, stop, progress, results) -> None:
    """Receive every event; record (arrival - event ts) per event, mints apart."""
    import asyncio

    import websockets

    async def consume() -> dict:
        latencies: list[int] = []
        probe_arrivals: dict[int, int] = {}
        received = 0
        first_at = None
        async with websockets.connect(url, additional_headers={"Authorization":
                                                               f"Bearer {key}"},
                                      max_size=None, open_timeout=30) as ws:
            backlog = 0
            started = time.monotonic()
            while True:
                frame = orjson.loads(await ws.recv())
                if frame["type"] == "ready":
                    break
                backlog += len(frame["events"])
                progress.value = frame["events"][-1]["seq"]
            backlog_seconds = time.monotonic() - started
            ready.set()
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time_ns()
                frame = orjson.loads(data)
                if frame["type"] != "events":
                    continue
                if first_at is None:
                    first_at = time.monotonic()
                received += len(frame["events"])
                if time.monotonic() - first_at < WARM_UP_SECONDS:
                    continue
                for event in frame["events"]:
                    latencies.append(now - event["ts"])
                    if event["type"] == "mint":
                        probe_arrivals[event["seq"]] = now
                progress.value = frame["events"][-1]["seq"]
        return {"received": received, "latencies_ns": latencies,
                "probe_arrivals": probe_arrivals, "backlog_events": backlog,
                "backlog_seconds": backlog_seconds}

    results.send(asyncio.run(consume()))


def _receiver_main(port_out, stop, results) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    arrivals: dict[int, tuple[int, int]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            event = orjson.loads(body)["event"]
            arrivals[event["seq"]] = (time.time_ns(), event["ts"])
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.send(server.server_address[1])
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
    stop.wait()
    server.shutdown()
    results.send(arrivals)


# -- the run ----------------------------------------------------------------------------------

def _setup(client: Client, count: int) -> tuple[list[str], str]:
    client.json("POST", "/api/v1/ledgers", {"code": LEDGER, "scale": 2})
    ids = accounts_open(client, LEDGER, [f"did:bench:{i}" for i in range(count)], FUND_MINOR)
    [probe] = accounts_open(client, LEDGER, ["did:bench:probe"], None)
    return ids, probe


_ITEM = b'{"from":"%s","to":"%s","amount":1,"idempotency_key":"%s-%d"}'


def _batch_body(ids: list[bytes], rng: random.Random, prefix: bytes, count: int) -> bytes:
    last = len(ids) - 1
    items = []
    for i in range(count):
        a = rng.randint(0, last)
        b = rng.randint(0, last - 1)
        items.append(_ITEM % (ids[a], ids[b + (b >= a)], prefix, i))
    return b'{"ledger":"%s","transfers":[%s]}' % (LEDGER.encode(), b",".join(items))


def _ms(values_ns: list[int], fraction: float) -> float:
    return round(percentile(values_ns, fraction) / 1e6, 1)


def run(args: argparse.Namespace) -> dict:
    load_average_before = round(os.getloadavg()[0], 2)
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="ledgerfs-bench-streaming-") as tmp:
        server = (EmbeddedServer(Path(tmp), args.projector) if args.mode == "embedded"
                  else DistributedServer(Path(tmp), args))
        children = []
        try:
            client = Client(server.port, server.key)
            ids, probe_account = _setup(client, args.accounts)
            head = client.json("GET", f"/api/v1/ledgers/{LEDGER}")["head_seq"]
            _wait(lambda: server.monitored_seq() >= head, "the monitor to finish the set-up",
                  DRAIN_TIMEOUT_SECONDS)
            receiver_port, port_in = context.Pipe()
            receiver_results, receiver_out = context.Pipe(duplex=False)
            receiver_stop = context.Event()
            receiver = context.Process(target=_receiver_main,
                                       args=(port_in, receiver_stop, receiver_out))
            receiver.start()
            children.append(receiver)
            hook_url = f"http://127.0.0.1:{receiver_port.recv()}/hook"
            server.subscribe(client, hook_url)
            time.sleep(1.5)  # the monitor reloads subscriptions once a second

            url = f"ws://127.0.0.1:{server.port}/ws/events/?ledger={LEDGER}"
            live = _Consumer(context, url, server.key)
            children.append(live.process)
            load = _load(server, ids, probe_account, args)
            ws_seq_at_end = live.progress.value
            drain_started = time.monotonic()
            _wait(lambda: live.progress.value >= load["head_seq"], "the WebSocket client",
                  DRAIN_TIMEOUT_SECONDS)
            ws_drain = time.monotonic() - drain_started
            _wait(lambda: server.monitored_seq() >= load["head_seq"], "the monitor",
                  DRAIN_TIMEOUT_SECONDS)
            monitor_drain = time.monotonic() - drain_started
            live_results = live.finish()
            time.sleep(2.0)  # the last probes' webhooks
            receiver_stop.set()
            hooks = receiver_results.recv()
            receiver.join(10)

            backlog = _Consumer(context, f"{url}&after_seq=-1", server.key)
            children.append(backlog.process)
            backlog_results = backlog.finish()
        except BaseException:
            kept = Path(tempfile.mkdtemp(prefix="ledgerfs-bench-streaming-logs-"))
            for log in Path(tmp).glob("*.log"):
                shutil.copy(log, kept)
            print(f"the servers' logs are in {kept}", file=sys.stderr)
            raise
        finally:
            for child in children:
                if child.is_alive():
                    child.terminate()
            server.close()

    warm = live_results["latencies_ns"]
    acks = load["acks"]
    ws_probes = live_results["probe_arrivals"]
    ws_after_ack = [ws_probes[seq] - acked for seq, acked in acks.items() if seq in ws_probes]
    hook_latency = [arrived - ts for arrived, ts in hooks.values()]
    hook_after_ack = [hooks[seq][0] - acked for seq, acked in acks.items() if seq in hooks]
    return {
        "scenario": "streaming", "mode": args.mode, "seconds": load["seconds"],
        "projector": args.projector if args.mode == "embedded" else "writer process",
        "load_average_before": load_average_before,
        "target_tps": args.rate, "tps": load["tps"], "transfers": load["transfers"],
        "accounts": args.accounts, "batch": args.batch, "writers": args.writers,
        "ws_events": live_results["received"],
        "ws_p50_ms": _ms(warm, 0.50), "ws_p95_ms": _ms(warm, 0.95),
        "ws_p99_ms": _ms(warm, 0.99), "ws_max_ms": _ms(warm, 1.0),
        "ws_after_ack_p50_ms": _ms(ws_after_ack, 0.50),
        "ws_after_ack_p95_ms": _ms(ws_after_ack, 0.95),
        "ws_events_per_s": round(live_results["received"] / load["seconds"]),
        "ws_lag_at_end_events": load["head_seq"] - ws_seq_at_end,
        "ws_drain_s": round(ws_drain, 2),
        "monitor_lag_at_end_events": load["head_seq"] - load["monitor_seq_at_end"],
        "monitor_drain_s": round(monitor_drain, 2),
        "monitor_drain_events_per_s": round(
            (load["head_seq"] - load["monitor_seq_at_end"]) / max(monitor_drain, 1e-3)),
        "webhook_probes": load["probes"], "webhook_received": len(hooks),
        "webhook_p50_ms": _ms(hook_latency, 0.50), "webhook_p95_ms": _ms(hook_latency, 0.95),
        "webhook_max_ms": _ms(hook_latency, 1.0),
        "webhook_after_ack_p50_ms": _ms(hook_after_ack, 0.50),
        "webhook_after_ack_p95_ms": _ms(hook_after_ack, 0.95),
        "backlog_events": backlog_results["backlog_events"],
        "backlog_events_per_s": round(backlog_results["backlog_events"]
                                      / max(backlog_results["backlog_seconds"], 1e-9)),
    }


class _Consumer:
    """A WebSocket client process, ready (backlog received) once constructed."""

    def __init__(self, context, url: str, key: str) -> None:
        self.ready, self.stop = context.Event(), context.Event()
        self.progress = context.Value("q", -1)
        self.results, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_consumer_main, args=(
            url, key, self.ready, self.stop, self.progress, sender))
        self.process.start()
        if not self.ready.wait(DRAIN_TIMEOUT_SECONDS):
            raise RuntimeError("the WebSocket client did not get ready")

    def finish(self) -> dict:
        self.stop.set()
        results = self.results.recv()
        self.process.join(10)
        return results


def _load(server, ids: list[str], probe_account: str, args: argparse.Namespace) -> dict:
    id_bytes = [account_id.encode() for account_id in ids]
    stop = threading.Event()
    lock = threading.Lock()
    totals = {"transfers": 0, "head_seq": -1, "probes": 0}
    acks: dict[int, int] = {}
    """Probe seq -> when its HTTP answer (the acknowledgement) arrived."""
    errors: list[str] = []
    per_writer_rate = args.rate / args.writers if args.rate else 0

    def note(data: bytes, count: int) -> None:
        reply = orjson.loads(data)
        seq = max(r["event"]["seq"] for r in reply["results"] if r.get("event"))
        with lock:
            totals["transfers"] += count
            totals["head_seq"] = max(totals["head_seq"], seq)

    def writer(w: int) -> None:
        client = Client(server.port, server.key)
        rng = random.Random(args.seed * 1000 + w)
        due = time.monotonic()
        b = 0
        while not stop.is_set():
            if per_writer_rate:
                due += args.batch / per_writer_rate
                pause = due - time.monotonic()
                if pause > 0 and stop.wait(pause):
                    return
            body = _batch_body(id_bytes, rng, b"w%d-b%d" % (w, b), args.batch)
            b += 1
            status, data = client.call("POST", "/api/v1/transfers", body)
            if status != 200:
                errors.append(f"batch -> {status}: {data[:200]!r}")
                return
            note(data, args.batch)

    def prober() -> None:
        client = Client(server.port, server.key)
        n = 0
        while not stop.wait(1 / args.probe_hz):
            body = orjson.dumps({"ledger": LEDGER, "transfers": [{
                "type": "mint", "account": probe_account, "amount": 1,
                "idempotency_key": f"probe-{n}"}]})
            n += 1
            status, data = client.call("POST", "/api/v1/transfers", body)
            acked = time.time_ns()
            if status != 200:
                errors.append(f"probe -> {status}: {data[:200]!r}")
                return
            note(data, 0)
            with lock:
                totals["probes"] += 1
                acks[orjson.loads(data)["results"][0]["event"]["seq"]] = acked

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(args.writers)]
    threads.append(threading.Thread(target=prober))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {**totals, "seconds": round(seconds, 2), "tps": round(totals["transfers"] / seconds),
            "monitor_seq_at_end": server.monitored_seq(), "acks": acks}
