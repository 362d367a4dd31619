"""Small helpers shared by the scenarios: percentiles and timed load phases."""

import threading
import time


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction in [0, 1])."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_for(
    threads: list[threading.Thread], seconds: float, stop: threading.Event, errors: list[str]
) -> float:
    """Start the load threads, let them run `seconds`, set `stop` and join them.

    Returns the elapsed seconds; raises if any thread recorded a failed request in `errors`.
    """
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return elapsed
