"""`python -m bench pg-baseline`: runs against real PostgreSQL, durable, conserves money, and
prints one JSON object as its last line (the contract every scenario keeps)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pg_baseline_prints_its_result_as_the_last_json_line(postgres_server):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "pg-baseline", "--seconds", "1", "--accounts", "200",
         "--clients", "2", "--pipeline", "10", "--hot", "--server-url", postgres_server,
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["scenario"] == "pg-baseline" and result["durable"] is True
    assert result["hot"] is True
    assert result["transfers"] > 0 and result["tps"] > 0
    assert result["entries"] == result["transfers"] - result["rejected"]
