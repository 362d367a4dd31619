"""The read-model tests again, on PostgreSQL (the distributed mode's database): the projector
takes a PostgreSQL-only path there (one `UPDATE ... FROM unnest(...)` per batch, its columns as
array literals, commits without waiting for the WAL flush), which the SQLite run of
test_read_model.py does not reach."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg

from ledger.projector import _array_literal

ROOT = Path(__file__).resolve().parents[2]


def test_the_read_model_tests_pass_on_postgres(postgres_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERFS_"))}
    env.update(DATABASE_URL=postgres_url, PYTHONPATH=str(ROOT))
    report = tmp_path / "report.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
         "tests/integration/test_read_model.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    suite = ET.parse(report).getroot().find("testsuite")
    counts = {name: int(suite.get(name)) for name in ("tests", "failures", "errors", "skipped")}
    assert counts["tests"] >= 8 and counts["failures"] == counts["errors"] == 0, counts
    assert counts["skipped"] == 0, counts


def test_array_literals_read_back_as_the_values(postgres_url):
    texts = ["plain", 'a "quoted" one', "back\\slash", "comma, {brace}", " spaced ", "NULL", "",
             None, "ünïcode"]
    numbers = [0, -1, 2**63 - 1, None, 42]
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute(
            "SELECT %s::text[], %s::bigint[], %s::bigint[]",
            [_array_literal(tuple(texts), False), _array_literal(tuple(numbers), True),
             _array_literal((1, 2), True)],
        ).fetchone()
    assert row == (texts, numbers, [1, 2])


def test_projected_balance_updates_stay_on_their_page(postgres_url):
    # Migration 0002 leaves room in the accounts table's pages, so rewriting balances (what
    # the projector does every round) is a HOT update: no index entry is written. Filled to
    # 100%, most of these updates moved their row and wrote all five indexes.
    accounts, rounds = 2_000, 3
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        ledger = connection.execute(
            "INSERT INTO ledger_ledger (code, scale, created_at) VALUES ('HOT', 2, now())"
            " RETURNING id").fetchone()[0]
        connection.execute(
            "INSERT INTO ledger_account (id, did, kind, status, tags, safeguarding, available,"
            " held, bonded, fee, promo, position, opened_seq, last_seq, ledger_id)"
            " SELECT 'acc_hot_' || n, 'did:hot:' || n, 'customer', 'open', '[]', '', 0, 0, 0,"
            " 0, 0, n, n, n, %s FROM generate_series(0, %s) AS n", [ledger, accounts - 1])
        for seq in range(rounds):
            connection.execute("UPDATE ledger_account SET available = available + 1,"
                               " last_seq = last_seq + %s", [seq])
        connection.execute("SELECT pg_stat_force_next_flush()")
        updated, hot = connection.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
            " WHERE relname = 'ledger_account'").fetchone()
    assert updated == accounts * rounds
    assert hot >= 0.99 * updated, (hot, updated)
