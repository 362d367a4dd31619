"""The benchmarks' CPU meter (`bench.cpu`): cores per group of processes, children included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.cpu import CpuMeter, with_descendants

BUSY = "while True: pass"
# A parent that only waits, with a busy child: the group of the parent and its descendants.
PARENT_OF_BUSY = (
    "import subprocess, sys; "
    f"subprocess.Popen([sys.executable, '-c', {BUSY!r}]).wait()"
)


def test_cores_are_counted_per_group_with_descendants():
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    parent = subprocess.Popen([sys.executable, "-c", PARENT_OF_BUSY])
    family = [parent.pid]
    try:
        deadline = time.monotonic() + 10
        while len(family) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            family = with_descendants(parent.pid)
        meter = CpuMeter({"idle": [idle.pid], "parent": with_descendants(parent.pid)})
        meter.start()
        time.sleep(1.0)
        cores = meter.stop()
    finally:
        for pid in (idle.pid, *family):
            os.kill(pid, signal.SIGKILL)
        idle.wait()
        parent.wait()
    assert len(family) == 2
    assert cores["idle"] < 0.1
    assert 0.5 < cores["parent"] < 1.5
