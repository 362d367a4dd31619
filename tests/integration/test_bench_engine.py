"""The engine benchmark's command-line contract: `--json` ends with one JSON object."""

import json
import subprocess
import sys
from pathlib import Path

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
