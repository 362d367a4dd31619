"""The cyclic garbage collector's schedule for the ledger's busy processes: writers and web.

CPython 3.11 collects its youngest generation every 700 net allocations of container objects.
A writer's process allocates hundreds of thousands of them a second (commands decoded from the
bus, parsed event bodies in its projector, result lists), almost all freed by reference
counting and none in a cycle, so each of those collections mostly re-traverses objects that are
still in use: measured under the distributed HTTP load, 7.7% of the writer thread went to
collections. Collecting every 50,000 allocations still finds every cycle, far less often:
the same benchmark went from 21,900-22,900 to 24,200-25,600 transfers/s (three runs each,
alternating). The web workers parse a thousand-item batch per request into as many dicts; with
the same schedule there the benchmark gained another 2-6% (25,009 / 26,061 -> 25,637 / 27,604,
alternating). A writer sets it when it recovers (so the embedded server has it too), a
distributed web process when `config.asgi` loads.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Net container allocations between collections of the youngest generation (default 700)."""
MIDDLE_THRESHOLD = 20
"""Young collections between collections of the middle generation (default 10)."""
OLD_THRESHOLD = 50
"""Middle collections before the oldest generation is considered (default 10)."""


def tune_for_throughput() -> None:
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
