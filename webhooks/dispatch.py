"""How delivery runs start: Celery tasks on the workers, or a thread of this process.

With a broker (`REDIS_URL`), `deliveries_kick` sends `webhooks.deliver` tasks to the Celery
workers, with a countdown for a retry due later. In embedded mode Celery runs tasks eagerly in
the caller, which would make the monitor wait for receivers and fire retries at once instead of
after their backoff; there `LocalScheduler`, a thread of this process, runs the same task at
its due time. Either way the beat entry `webhooks.deliver_due` kicks whatever was missed.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings

log = logging.getLogger(__name__)


def deliveries_kick(subscription_ids: Iterable[int], delay_seconds: float = 0.0) -> None:
    """Have the subscriptions' due deliveries sent (now, or after `delay_seconds`)."""
    from webhooks.tasks import deliver

    for subscription_id in subscription_ids:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            _local().schedule(subscription_id, delay_seconds)
        else:
            deliver.apply_async((subscription_id,), countdown=max(0.0, delay_seconds))


class LocalScheduler:
    """Runs `webhooks.deliver` for subscriptions at their due times, one at a time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._due: dict[int, float] = {}
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="webhook-deliveries",
                                        daemon=True)
        self._thread.start()

    def schedule(self, subscription_id: int, delay_seconds: float) -> None:
        due = time.monotonic() + max(0.0, delay_seconds)
        with self._wake:
            if self._due.get(subscription_id, float("inf")) <= due:
                return  # already due at least as soon
            self._due[subscription_id] = due
            heapq.heappush(self._heap, (due, subscription_id))
            self._wake.notify()

    def _run(self) -> None:
        from django.db import close_old_connections

        from webhooks.tasks import deliver

        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._wake.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                due, subscription_id = heapq.heappop(self._heap)
                if self._due.get(subscription_id) != due:
                    continue  # superseded by an earlier schedule
                del self._due[subscription_id]
            try:
                close_old_connections()
                deliver.apply(args=(subscription_id,))
            except Exception:
                log.exception("webhook deliveries of subscription %s failed", subscription_id)


_scheduler: LocalScheduler | None = None
_scheduler_lock = threading.Lock()


def _local() -> LocalScheduler:
    global _scheduler
    with _scheduler_lock:
        if _scheduler is None:
            _scheduler = LocalScheduler()
        return _scheduler
