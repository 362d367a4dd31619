"""`LEDGERFS_WRITER_CPUS` (config/cpus.py): the writers' CPUs, the other processes kept off
them; and the distributed benchmark's choice of them (`bench.distributed.writer_cpus`). The
placements run in child processes, which really move."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.distributed import writer_cpus as bench_writer_cpus
from config.cpus import ENV, CpuSettingError, parse_cpus, writer_cpus

ROOT = Path(__file__).resolve().parents[2]
CORES = os.cpu_count() or 1
needs_two_cores = pytest.mark.skipif(CORES < 2, reason="pinning needs at least two CPUs")


@pytest.mark.parametrize(("text", "cpus"), [
    ("1", {1}), ("2,3", {2, 3}), (" 0-1 , 4", {0, 1, 4}), ("3-3", {3}),
])
def test_cpu_lists_and_ranges(text, cpus):
    assert parse_cpus(text) == cpus


@pytest.mark.parametrize("text", ["one", "3-1", "-1", "1,", "1-2-3", "1.5"])
def test_what_is_not_a_cpu_list_is_refused(text):
    with pytest.raises(CpuSettingError, match=ENV):
        parse_cpus(text)


def test_unset_or_blank_sets_nothing_aside():
    assert writer_cpus({}) is None
    assert writer_cpus({ENV: "  "}) is None


def test_cpus_the_machine_lacks_or_all_of_them_are_refused():
    with pytest.raises(CpuSettingError, match="has CPUs"):
        writer_cpus({ENV: str(CORES)})
    with pytest.raises(CpuSettingError, match="leaves no CPU"):
        writer_cpus({ENV: f"0-{CORES - 1}"})


def affinity_in_child(code: str, **environment: str) -> set[int]:
    """The CPUs a fresh interpreter may run on after running `code`."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport os\nprint(sorted(os.sched_getaffinity(0)))"],
        cwd=ROOT, env={**env, **environment}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@needs_two_cores
def test_the_writer_moves_onto_its_cpus_and_the_others_off_them():
    last = CORES - 1
    assert affinity_in_child("from config.cpus import place_writer; place_writer()",
                             **{ENV: str(last)}) == {last}
    assert affinity_in_child("from config.cpus import place_other; place_other()",
                             **{ENV: str(last)}) == set(range(CORES)) - {last}
    assert affinity_in_child("from config.cpus import place_other; place_other()") == set(
        range(CORES))


@needs_two_cores
def test_the_distributed_settings_keep_a_process_off_the_writers_cpus(tmp_path):
    load = ("import runpy; runpy.run_path('config/settings.py')")
    common = {ENV: "0", "LEDGERFS_DATA_DIR": str(tmp_path)}
    assert affinity_in_child(load, REDIS_URL="redis://127.0.0.1:6379/0", **common) == set(
        range(1, CORES))
    # Embedded mode: the writer and the web share one process; nothing moves.
    assert affinity_in_child(load, **common) == set(range(CORES))


@needs_two_cores
def test_a_bad_setting_stops_a_process_with_its_name(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('config/settings.py')"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, ENV: "0-99", "REDIS_URL": "redis://127.0.0.1:6379/0",
             "LEDGERFS_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode != 0 and ENV in done.stderr


def test_the_benchmark_gives_a_lone_writer_the_last_core():
    assert bench_writer_cpus("auto", 1) == (str(CORES - 1) if CORES >= 2 else None)
    assert bench_writer_cpus("auto", 2) is None
    assert bench_writer_cpus("none", 1) is None
    assert bench_writer_cpus("0", 2) == "0"
