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
