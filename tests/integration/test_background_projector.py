"""`BackgroundProjector` paces its rounds: at most one per `INTERVAL_SECONDS`, and none sooner
after a round began than that round's duration divided by `BUSY_SHARE`, up to
`MAX_INTERVAL_SECONDS`."""

from __future__ import annotations

import time

import pytest

from ledger import projector, services
from ledger.runtime import BackgroundProjector

pytestmark = pytest.mark.django_db(transaction=True)


def round_starts(runtime, monkeypatch, *, interval: float, round_seconds: float,
                 max_interval: float = 10.0) -> list[float]:
    """When the first three rounds of a projector kept busy with notifications began, each
    round taking `round_seconds` before projecting."""
    services.ledger_create(code="EUR", scale=2)
    starts: list[float] = []
    catch_up = projector.catch_up

    def timed_catch_up(*args, **kwargs):
        starts.append(time.monotonic())
        time.sleep(round_seconds)
        return catch_up(*args, **kwargs)

    monkeypatch.setattr(projector, "catch_up", timed_catch_up)
    background = BackgroundProjector()
    background.INTERVAL_SECONDS = interval
    background.MAX_INTERVAL_SECONDS = max_interval
    background.start(runtime.shards)
    try:
        deadline = time.monotonic() + 10
        while len(starts) < 3 and time.monotonic() < deadline:
            background.notify("EUR", -1)
            time.sleep(0.005)
    finally:
        background.stop()
    assert len(starts) >= 3, starts
    return starts[:3]


def gaps(starts: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(starts[:-1], starts[1:], strict=True)]


def test_a_long_round_stretches_the_pause_after_it(ledger_runtime, monkeypatch):
    starts = round_starts(ledger_runtime, monkeypatch, interval=0.01, round_seconds=0.05)
    least = 0.05 / BackgroundProjector.BUSY_SHARE
    assert all(gap >= least * 0.95 for gap in gaps(starts)), (gaps(starts), least)


def test_short_rounds_follow_the_interval(ledger_runtime, monkeypatch):
    starts = round_starts(ledger_runtime, monkeypatch, interval=0.3, round_seconds=0.0)
    assert all(0.29 <= gap < 0.6 for gap in gaps(starts)), gaps(starts)


def test_the_pause_stops_at_the_ceiling(ledger_runtime, monkeypatch):
    starts = round_starts(ledger_runtime, monkeypatch, interval=0.01, round_seconds=0.05,
                          max_interval=0.2)
    assert all(0.19 <= gap < 0.45 for gap in gaps(starts)), gaps(starts)
