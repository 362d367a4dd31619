"""How the interpreter of the ledger's busy processes is tuned: the cyclic garbage collector's
schedule (writers and web, `tune_for_throughput`) and, where a writer runs, the GIL's switch
interval (`tune_for_writer`). A writer applies both when it recovers (so the embedded server
has both), a web process the first when `config.asgi` loads.

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
413 / 503 -> 246 / 220 ms and balance-read p95 368 / 354 -> 195 / 171 ms. Not in a distributed
web process, which has no writer: there 1 ms only cost throughput (25,441 / 25,073 -> 24,006 /
24,148 transfers/s).
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
"""How long a thread keeps the GIL once another asks for it (default 5 ms), where a writer runs."""


def tune_for_throughput() -> None:
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def tune_for_writer() -> None:
    tune_for_throughput()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
