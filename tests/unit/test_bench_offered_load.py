"""Offered-load benchmarking: a client's send schedule (`bench.stats.Schedule`) and the suite's
scenarios and report rows at fixed shares of the saturated throughput (`bench.suite`); and the
report's line for the engine with UUID idempotency keys."""

from __future__ import annotations

import argparse
import threading
import time

import pytest

from bench import suite
from bench.stats import Schedule


def test_back_to_back_sends_start_now():
    stop = threading.Event()
    before = time.perf_counter()
    started = Schedule().next_start(stop)
    assert before <= started <= time.perf_counter()
    stop.set()
    assert Schedule().next_start(stop) is None


def test_a_schedule_waits_for_each_due_time():
    stop = threading.Event()
    schedule = Schedule(interval=0.05, offset=0.05)
    first = schedule.next_start(stop)
    assert time.perf_counter() >= first
    second = schedule.next_start(stop)
    assert second == pytest.approx(first + 0.05)
    assert time.perf_counter() >= second


def test_a_late_send_counts_from_when_it_was_due():
    stop = threading.Event()
    schedule = Schedule(interval=0.05)
    first = schedule.next_start(stop)
    time.sleep(0.2)  # the answer to the first send came late: three more sends are overdue
    late = schedule.next_start(stop)
    assert late == pytest.approx(first + 0.05)
    assert time.perf_counter() - late >= 0.14


def test_a_stopped_schedule_stops_waiting():
    stop = threading.Event()
    schedule = Schedule(interval=60.0, offset=60.0)
    threading.Timer(0.05, stop.set).start()
    started = time.perf_counter()
    assert schedule.next_start(stop) is None
    assert time.perf_counter() - started < 5


def test_offered_rates_are_shares_of_the_saturated_throughput():
    args = argparse.Namespace(seconds=10.0)
    assert suite.offered_scenarios(args, 21_287) == [
        ("http-offered-50", ["http-distributed", "--rate", "11000", "--seconds", "10.0"]),
        ("http-offered-75", ["http-distributed", "--rate", "16000", "--seconds", "10.0"]),
    ]
    assert suite.offered_scenarios(args, 900)[0][1][2] == "1000"


def run_result(offered: int | None, tps: int, single_p95: float) -> dict:
    return {"offered_tps": offered, "tps": tps, "p50_batch_ms": 60.0, "p95_batch_ms": 160.0,
            "loaded_p50_ms": 4.8, "loaded_p95_ms": single_p95, "balance_p50_ms": 0.7,
            "balance_p95_ms": 3.6, "command": f"python -m bench http-distributed --rate {offered}"}


def test_the_report_sets_offered_loads_beside_the_saturated_run():
    results = {"http-uniform": run_result(None, 21_000, 196.0),
               "http-offered-50": run_result(11_000, 10_990, 49.5),
               "http-offered-75": run_result(16_000, 15_800, 120.25)}
    lines = suite._offered_section(results)
    assert "| 11,000 | 10,990 | 60.0 / 160.0 | 4.8 / 49.5 | 0.7 / 3.6 |" in lines
    assert "| as fast as answered | 21,000 | 60.0 / 160.0 | 4.8 / 196.0 | 0.7 / 3.6 |" in lines
    goals = suite._goals(results)
    assert ("| write p95 < 100 ms at 11,000 transfers/s offered (50% of saturation) | 49.5 ms "
            "| met |") in goals
    assert ("| write p95 < 100 ms at 16,000 transfers/s offered (75% of saturation) | 120.25 ms "
            "| NOT met |") in goals
    assert "| write p95 < 100 ms under load | 196.0 ms | NOT met |" in goals


def test_no_offered_section_without_its_runs():
    assert suite._offered_section({"http-uniform": run_result(None, 21_000, 196.0)}) == []


def test_the_report_gives_the_engine_with_uuid_keys_beside_the_counter_keys():
    assert ("engine-uuid", ["engine", "--uuid-keys", "--transfers", "200000"]) in suite.scenarios(
        argparse.Namespace(seconds=10.0, transfers=200_000))
    results = {"engine-uniform": {"tps": 104_000}, "engine-uuid": {"tps": 83_200}}
    assert suite._uuid_keys_line(results)[0].endswith(
        "(`--uuid-keys`): 83,200 transfers/s, 80% of the table's 104,000.")
    assert suite._uuid_keys_line({"engine-uniform": {"tps": 104_000}}) == []
