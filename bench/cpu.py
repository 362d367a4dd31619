"""CPU time spent by groups of processes during a benchmark's load phase, read from /proc.

Why: on this VM the throughput of one build drifts by more than most changes being measured,
while the CPU time a transfer costs in each process (web, writer, PostgreSQL, ...) is much
steadier, and it says where the two cores went. Linux only, as the benchmarks are.
"""

from __future__ import annotations

import os
import time

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first, then the parent
    pid); raises OSError once the process is gone."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process, all its threads, so far (0 once it is gone)."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def _processes() -> list[tuple[int, int, bytes]]:
    """(pid, parent pid, command line) of every process that can be read."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            parent = int(_stat(name)[1])
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except (OSError, ValueError):
            continue
        found.append((int(name), parent, command))
    return found


def with_descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for child, parent, _ in _processes():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, ()))
    return out


def command_starts_with(prefix: bytes) -> list[int]:
    """Processes whose command line starts with `prefix` (e.g. b"postgres")."""
    return [pid for pid, _, command in _processes() if command.startswith(prefix)]


class CpuMeter:
    """CPU cores used by named groups of processes (given by pid) between `start()` and
    `stop()`."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._pids = {name: sorted(set(pids)) for name, pids in groups.items()}
        self._before: dict[int, float] = {}
        self._started = 0.0

    def start(self) -> None:
        self._before = {pid: cpu_seconds(pid) for pids in self._pids.values() for pid in pids}
        self._started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Cores used per group (CPU seconds over wall seconds)."""
        elapsed = time.perf_counter() - self._started
        return {
            name: round(sum(max(cpu_seconds(pid) - self._before[pid], 0.0) for pid in pids)
                        / elapsed, 3)
            for name, pids in self._pids.items()
        }
