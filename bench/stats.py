"""Small helpers shared by the scenarios: percentiles, timed load phases and send schedules."""

import threading
import time
from collections.abc import Callable


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction in [0, 1])."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms(values: list[float], fraction: float) -> float:
    """`percentile` of seconds, in milliseconds rounded to 0.01."""
    return round(percentile(values, fraction) * 1e3, 2)


def run_for(
    threads: list[threading.Thread], seconds: float, stop: threading.Event, errors: list[str],
    warmup_seconds: float = 0.0, on_measure: Callable[[], None] | None = None,
) -> float:
    """Start the load threads, let them run `warmup_seconds`, call `on_measure`, let them run
    `seconds` more, set `stop` and join them.

    Returns the seconds from `on_measure` to the join; raises if any thread recorded a failed
    request in `errors`.
    """
    for thread in threads:
        thread.start()
    stop.wait(warmup_seconds)
    if on_measure is not None:
        on_measure()
    started = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return elapsed


class Schedule:
    """When a load client sends: back to back (`interval` 0), or every `interval` seconds from
    `offset` seconds on. `next_start` waits for the next send and returns the time its latency
    counts from: on a schedule, when the send was due, so a send made late (the previous answer
    came after it was due) shows its lateness instead of quietly lowering the offered load."""

    def __init__(self, interval: float = 0.0, offset: float = 0.0) -> None:
        self.interval = interval
        self.due = time.perf_counter() + offset

    def next_start(self, stop: threading.Event) -> float | None:
        """The next send's start (`time.perf_counter`), or None once `stop` is set."""
        if not self.interval:
            return None if stop.is_set() else time.perf_counter()
        if stop.wait(max(0.0, self.due - time.perf_counter())):
            return None
        start, self.due = self.due, self.due + self.interval
        return start
