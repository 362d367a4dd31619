"""Where the distributed stack's processes run: `LEDGERFS_WRITER_CPUS`.

A shard's single writer is the stack's bottleneck: its process holds the interpreter lock most
of the time under load. When every process may run on every core, the scheduler keeps moving
the web workers, the clients and Redis onto the writer's core and the writer off it, and each
move empties the caches its state lives in. On this 2-core machine, with the writer alone on
one core and everything else on the other, `python -m bench http-distributed` (six
alternating pairs, `--writer-cpus auto` against `none`) gave a median of 29,900 transfers/s
against 23,800 (21,200-32,800 against 21,400-28,500; one pair of the six lost 11%), and
the whole stack's CPU per transfer fell from 65-84 µs to 59-71 in five pairs of the six.

Set `LEDGERFS_WRITER_CPUS` to CPU numbers ("3", "2,3" or "2-3"): `ledger_writer` processes then
run only there, except RocksDB's own background threads (`place_storage_threads`), and every
other process of the distributed stack (web workers, Celery, the monitor, the projector: they
all load the settings first) only on the remaining CPUs. Unset, or in embedded mode (one
process for everything), the OS places everything as it likes.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "LEDGERFS_WRITER_CPUS"
STORAGE_THREADS_NICE = 10


class CpuSettingError(ValueError):
    """`LEDGERFS_WRITER_CPUS` names no usable set of CPUs."""


def parse_cpus(text: str) -> frozenset[int]:
    """ "1", "2,3", "0-1,4" -> the CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise CpuSettingError(f"{ENV}: {part.strip()!r} is not a CPU number or range") from None
        if low < 0 or high < low:
            raise CpuSettingError(f"{ENV}: {part.strip()!r} is not a CPU number or range")
        cpus.update(range(low, high + 1))
    return frozenset(cpus)


def writer_cpus(environ=os.environ) -> frozenset[int] | None:
    """The CPUs set aside for writers, None when none are. Refuses a set that leaves no CPU to
    the other processes or names a CPU this machine does not have."""
    text = environ.get(ENV, "").strip()
    if not text:
        return None
    cpus = parse_cpus(text)
    present = frozenset(range(os.cpu_count() or 1))
    if not cpus <= present:
        raise CpuSettingError(f"{ENV}: this machine has CPUs 0-{max(present)} only")
    if cpus == present:
        raise CpuSettingError(f"{ENV}: leaves no CPU for the web and the other processes")
    return cpus


def place_writer(environ=os.environ) -> None:
    """Run this process (its current thread and the threads it starts) on the writers' CPUs."""
    cpus = writer_cpus(environ)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def place_other(environ=os.environ) -> None:
    """Keep this process (its current thread and the threads it starts) off the writers' CPUs;
    left as it is when that would leave it no CPU at all."""
    cpus = writer_cpus(environ)
    if cpus is not None:
        rest = os.sched_getaffinity(0) - cpus
        if rest:
            os.sched_setaffinity(0, rest)


def place_storage_threads(environ=os.environ) -> None:
    """Move this process's RocksDB background threads (memtable flushes and compactions,
    named `rocksdb:*`; RocksDB starts them when it opens its first database) off the writers'
    CPUs, onto every other CPU of the machine, at nice 10.

    Why: they hold no interpreter lock, so they need not share the writer's CPU, where under
    load they took a tenth of it (2.3 µs of CPU per transfer, `python -m bench
    http-distributed`); moved, three alternating pairs gave 51,136 / 53,005 / 52,029
    transfers/s against 48,675 / 49,516 / 49,307. On the other CPUs they competed with the
    web workers, and the balance reads' p95 went from 8-10 ms to 14-18; at nice 10 they take
    what the web leaves (balance p95 8.8-11.1 ms). Flushes still keep up: that CPU is not
    saturated. Figures: docs/benchmarks.md, the fourteenth session."""
    cpus = writer_cpus(environ)
    if cpus is None:
        return
    rest = frozenset(range(os.cpu_count() or 1)) - cpus
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().startswith("rocksdb:"):
                os.sched_setaffinity(int(task.name), rest)
                os.setpriority(os.PRIO_PROCESS, int(task.name), STORAGE_THREADS_NICE)
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
