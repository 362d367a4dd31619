"""PostgreSQL baseline: the same transfer workload done the strongest reasonable way in Postgres.

One server-side plpgsql function per transfer does the balance check, both balance updates and
the entry insert (with its idempotency key) in one round trip. Accounts are locked in id order
(no deadlocks), balances have a CHECK >= 0, and every transfer is its own durable transaction
(`synchronous_commit = on`, as LedgerFS acknowledges nothing before its fsync); concurrent
commits share WAL flushes, Postgres's own group commit. `--clients` processes each keep one
connection in psycopg 3 pipeline mode, with the call prepared server-side, sending `--pipeline`
calls before waiting for their results, so neither round trips nor parsing limit the rate.
Several transfers per transaction would share fsyncs but deadlock on random account pairs
(rows locked in different orders across the transfers of one transaction) and make one
transfer's fate depend on others', so each transfer stays its own transaction.

Uniform traffic picks both sides at random; `--hot` sends 80% of transfers through 10 accounts.
Uses DATABASE_URL's server (or 127.0.0.1:5432) and its own database, `ledgerfs_bench`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.stats import percentile

DATABASE = "ledgerfs_bench"
HOT_ACCOUNTS = 10
HOT_SHARE = 0.8

SCHEMA = """
DROP TABLE IF EXISTS entries;
DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE entries (
    id bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    debit_account bigint NOT NULL REFERENCES accounts (id),
    credit_account bigint NOT NULL REFERENCES accounts (id),
    amount bigint NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- 0 ok, 1 insufficient funds, 2 replayed (the key was used before), 3 account not found.
CREATE OR REPLACE FUNCTION transfer(p_key text, p_from bigint, p_to bigint, p_amount bigint)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    v_balance bigint;
    v_found int;
BEGIN
    PERFORM 1 FROM entries WHERE idempotency_key = p_key;
    IF FOUND THEN RETURN 2; END IF;
    -- Lock both rows in id order, so concurrent transfers never deadlock.
    SELECT count(*) INTO v_found FROM (
        SELECT id FROM accounts WHERE id IN (p_from, p_to) ORDER BY id FOR UPDATE
    ) locked;
    IF v_found < 2 THEN RETURN 3; END IF;
    SELECT balance INTO v_balance FROM accounts WHERE id = p_from;
    IF v_balance < p_amount THEN RETURN 1; END IF;
    UPDATE accounts SET balance = balance - p_amount WHERE id = p_from;
    UPDATE accounts SET balance = balance + p_amount WHERE id = p_to;
    INSERT INTO entries (idempotency_key, debit_account, credit_account, amount)
        VALUES (p_key, p_from, p_to, p_amount);
    RETURN 0;
END $$;
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16, help="client processes")
    parser.add_argument("--pipeline", type=int, default=50,
                        help="calls in flight per client before it waits")
    parser.add_argument("--hot", action="store_true", help="80%% of transfers on 10 accounts")
    parser.add_argument("--server-url", default=None,
                        help="PostgreSQL server URL (default: DATABASE_URL or 127.0.0.1:5432)")
    parser.add_argument("--seed", type=int, default=1)


def server_url(given: str | None) -> str:
    url = given or os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return url


def database_url(server: str, name: str) -> str:
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def prepare(server: str, accounts: int) -> str:
    """A fresh schema in the bench database (created if missing), accounts funded."""
    with psycopg.connect(database_url(server, "postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             [DATABASE]).fetchone():
            admin.execute(f"CREATE DATABASE {DATABASE}")
    url = database_url(server, DATABASE)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(SCHEMA)
        with db.cursor().copy("COPY accounts (id, balance) FROM STDIN") as copy:
            for account in range(accounts):
                copy.write_row((account, 10**12))
        db.execute("VACUUM ANALYZE accounts")
        settings = dict(db.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', "
            "'server_version')").fetchall())
    if settings.get("synchronous_commit") != "on" or settings.get("fsync") != "on":
        raise RuntimeError(f"the baseline must be durable; server has {settings}")
    return url


def _client(url: str, number: int, args: argparse.Namespace, start_at: float,
            out: multiprocessing.Queue) -> None:
    rng = random.Random(args.seed * 1000 + number)
    last = args.accounts - 1
    latencies: list[float] = []
    done = rejected = 0
    with psycopg.connect(url, autocommit=True, prepare_threshold=0) as db:
        sql = "SELECT transfer(%s, %s, %s, %s)"
        time.sleep(max(0.0, start_at - time.time()))
        deadline = time.perf_counter() + args.seconds
        batch = 0
        while time.perf_counter() < deadline:
            calls = []
            for i in range(args.pipeline):
                if args.hot and rng.random() < HOT_SHARE:
                    a = rng.randrange(HOT_ACCOUNTS)
                else:
                    a = rng.randint(0, last)
                b = rng.randint(0, last - 1)
                calls.append((f"c{number}-{batch}-{i}", a, b + (b >= a), 1))
            started = time.perf_counter()
            cursors = []
            with db.pipeline() as pipeline:
                for call in calls:
                    cursors.append(db.execute(sql, call))
                    # A pipeline is one implicit transaction until its next Sync: a sync after
                    # each call makes each transfer commit (and fsync) on its own.
                    pipeline.sync()
            codes = [cursor.fetchone()[0] for cursor in cursors]
            latencies.append(time.perf_counter() - started)
            done += len(calls)
            rejected += sum(1 for code in codes if code != 0)
            batch += 1
    out.put((done, rejected, latencies))


def run(args: argparse.Namespace) -> dict:
    server = server_url(args.server_url)
    url = prepare(server, args.accounts)
    out: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 1.0  # every client connected before the clock starts
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_client, args=(url, n, args, start_at, out))
                 for n in range(args.clients)]
    for process in processes:
        process.start()
    results = [out.get(timeout=args.seconds + 120) for _ in processes]
    for process in processes:
        process.join(30)
    transfers = sum(r[0] for r in results)
    latencies = [value for r in results for value in r[2]]
    with psycopg.connect(url) as db:
        entries = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        total = db.execute("SELECT sum(balance) FROM accounts").fetchone()[0]
    if total != args.accounts * 10**12:
        raise RuntimeError(f"money was created or lost: {total}")
    return {
        "scenario": "pg-baseline", "hot": args.hot, "durable": True,
        "clients": args.clients, "pipeline": args.pipeline,
        "accounts": args.accounts,
        "seconds": args.seconds, "transfers": transfers, "entries": entries,
        "rejected": sum(r[1] for r in results), "tps": round(transfers / args.seconds),
        "p50_pipeline_ms": round(percentile(latencies, 0.50) * 1e3, 2),
        "p95_pipeline_ms": round(percentile(latencies, 0.95) * 1e3, 2),
    }
