"""The Celery app of LedgerFS (`celery -A config worker`, `celery -A config beat`).

Configured from Django settings (`CELERY_*`). Distributed mode (`REDIS_URL` set): Redis is the
broker, a worker runs the tasks and beat sends the `CELERY_BEAT_SCHEDULE` entries. Embedded
mode: tasks run eagerly in the caller, and `InProcessBeat` runs the same schedule on a thread
of the web process (started with the ledger runtime, see `attestation.runtime`), so periodic
jobs such as sealing need no extra process and run the very same task code.
"""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from celery.schedules import maybe_schedule

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ledgerfs")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 10.0


class InProcessBeat:
    """Runs the beat schedule's entries in this process, each task called with `apply()`.

    Uses Celery's own schedule objects (`is_due`), so intervals and crontabs mean what they
    mean to `celery beat`. An entry runs at most once at a time; a slow run delays its next
    one instead of piling up, as `expires` does for the real beat.
    """

    def __init__(self, schedule: dict | None = None) -> None:
        self._schedule = app.conf.beat_schedule if schedule is None else schedule
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> InProcessBeat:
        self._thread = threading.Thread(target=self._run, name="in-process-beat", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("in-process beat still running a task after %.0fs", timeout)
            self._thread = None

    def _run(self) -> None:
        app.loader.import_default_modules()  # registers the apps' tasks (autodiscovery)
        entries = [
            [name, maybe_schedule(entry["schedule"], app=app), entry, app.now()]
            for name, entry in self._schedule.items()
        ]
        delay = 0.0
        while not self._stop.wait(delay):
            delay = 1.0
            for item in entries:
                name, schedule, entry, last_run_at = item
                due, next_seconds = schedule.is_due(last_run_at)
                if due:
                    item[3] = app.now()
                    self._call(name, entry)
                    due, next_seconds = schedule.is_due(item[3])
                delay = min(delay, max(next_seconds, 0.01))

    @staticmethod
    def _call(name: str, entry: dict) -> None:
        try:
            app.tasks[entry["task"]].apply(
                args=entry.get("args", ()), kwargs=entry.get("kwargs", {})
            )
        except Exception:
            log.exception("periodic task %s failed", name)
