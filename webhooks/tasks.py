"""Celery tasks of webhooks: thin, they take subscription ids and call one service.

The retry policy is the deliveries' own, not the task's: `subscription_deliver` records a
failed attempt with its backoff and returns when to run again, and the task schedules itself
for then (`deliveries_kick`), so retries stay in order behind the failing delivery. The beat
entry `deliver_due` (every few seconds) restarts any subscription whose kick was lost.
"""

from celery import shared_task

from webhooks import services
from webhooks.dispatch import deliveries_kick


@shared_task(name="webhooks.deliver", ignore_result=True, max_retries=0)
def deliver(subscription_id: int) -> None:
    again = services.subscription_deliver(subscription_id=subscription_id)
    if again is not None:
        deliveries_kick([subscription_id], delay_seconds=again)


@shared_task(name="webhooks.deliver_due", ignore_result=True, max_retries=0)
def deliver_due() -> int:
    due = services.subscriptions_due()
    deliveries_kick(due)
    return len(due)
