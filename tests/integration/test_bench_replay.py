"""The replay benchmark: `--json` ends with one JSON object, and its checks report damage."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench import replay as scenario

ROOT = Path(__file__).resolve().parents[2]
TRANSFERS, ACCOUNTS = 3_000, 200
# One event per command (open, mint, transfer) plus the two genesis events.
EVENTS = TRANSFERS + 2 * ACCOUNTS + 2


def test_replay_benchmark_prints_one_json_line_and_everything_compared_equal(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "replay", "--events", str(TRANSFERS), "--accounts",
         str(ACCOUNTS), "--data-dir", str(tmp_path), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert (result["scenario"], result["transfers"], result["accounts"]) == (
        "replay", TRANSFERS, ACCOUNTS)
    assert result["events"] == result["replayed_events"] == result["projector_events"] == EVENTS
    assert result["recover_accounts"] == ACCOUNTS + 2
    assert result["recover_tail_events"] == EVENTS
    for name in ("recover", "replay_live", "replay_stored", "projector"):
        assert result[f"{name}_differences"] == 0, result["differences"]
    assert result["differences"] == []
    for name in ("replay", "replay_verified", "projector"):
        assert result[f"{name}_events_per_s"] > 0
        assert result[f"{name}_seconds"] > 0
    assert result["recover_seconds"] > 0
    assert result["replay_verified_seconds"] >= result["replay_seconds"]
    assert list(tmp_path.iterdir()) == []  # the temporary shard is gone


def test_a_replay_that_disagrees_with_the_log_is_reported(tmp_path, monkeypatch):
    real_replay = scenario.replay

    def damaged_replay(store):
        state, count = real_replay(store)
        next(iter(state.accounts.values())).balances["available"] += 1
        return state, count

    monkeypatch.setattr(scenario, "replay", damaged_replay)
    args = argparse.Namespace(events=300, accounts=20, no_projector=True, data_dir=tmp_path,
                              seed=1)
    result = scenario.run(args)
    assert result["recover_differences"] == 0
    assert result["replay_live_differences"] == 1
    assert result["replay_stored_differences"] == 1
    assert "available balance" in result["differences"][0]
    assert "projector_differences" not in result
