"""The engine benchmark's command-line contract: `--json` ends with one JSON object."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

from bench.engine import transfers

ROOT = Path(__file__).resolve().parents[2]


def test_engine_benchmark_prints_one_json_line_with_its_figures(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "engine", "--transfers", "3000", "--accounts", "200",
         "--batch", "500", "--data-dir", str(tmp_path), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["transfers"] == 3000
    assert result["rejected"] == 0
    assert result["durable"] is True
    assert result["tps"] > 0
    assert 0 < result["p50_batch_ms"] <= result["p95_batch_ms"]
    assert result["seconds"] > 0


def test_uuid_keys_are_random_uuids_and_leave_the_accounts_picked_alone():
    ids = [f"acc_{i}" for i in range(20)]
    keyed = transfers(ids, 500, False, 7, uuid_keys=True)
    keys = [command.idempotency_key for command in keyed]
    assert len(set(keys)) == 500
    assert all(uuid.UUID(key).version == 4 for key in keys)
    plain = transfers(ids, 500, False, 7)
    assert [c.idempotency_key for c in plain[:2]] == ["t-0", "t-1"]
    assert [(c.account, c.to) for c in keyed] == [(c.account, c.to) for c in plain]
