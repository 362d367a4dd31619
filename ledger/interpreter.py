"""How the interpreter of the ledger's busy processes (writers and web) is tuned: the cyclic
garbage collector's schedule and the GIL's switch interval. A writer applies it when it recovers
(so the embedded server has it too), a web process when `config.asgi` loads.

The collector: CPython 3.11 collects its youngest generation every 700 net allocations of
container objects. A writer's process allocates hundreds of thousands of them a second
(commands decoded from the bus, result lists), almost all freed by reference counting and none
in a cycle, so each of those collections mostly re-traverses objects that are still in use:
measured under the distributed HTTP load, 7.7% of the writer thread went to collections.
Collecting every 50,000 allocations still finds every cycle, far less often: the same benchmark
went from 21,900-22,900 to 24,200-25,600 transfers/s (three runs each, alternating). The web
workers parse a thousand-item batch per request into as many dicts; with the same schedule
there the benchmark gained another 2-6% (25,009 / 26,061 -> 25,637 / 27,604, alternating).

The switch interval: a writer's thread shares its interpreter with the projector, the stream
publisher, the bus replier or (embedded) the web requests, and lets the GIL go at every RocksDB
multi-get and between groups; each time it waited up to a whole interval for another thread to
hand it back. 1 ms instead of 5, alternating runs: `python -m bench http-distributed` 24,560 /
24,983 -> 26,984 / 27,468 transfers/s (0.5 and 0.2 ms no better than 1); the embedded server
(`python -m bench http`) 21,757 / 21,237 -> 23,175 / 22,929, with single-transfer p95 under load
413 / 503 -> 246 / 220 ms and balance-read p95 368 / 354 -> 195 / 171 ms.
"""

from __future__ import annotations

import gc
import sys

YOUNG_THRESHOLD = 50_000
"""Net container allocations between collections of the youngest generation (default 700)."""
MIDDLE_THRESHOLD = 20
"""Young collections between collections of the middle generation (default 10)."""
OLD_THRESHOLD = 50
"""Middle collections before the oldest generation is considered (default 10)."""


SWITCH_INTERVAL_SECONDS = 0.001
"""How long a thread keeps the GIL once another asks for it (default 5 ms)."""


def tune_for_throughput() -> None:
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
