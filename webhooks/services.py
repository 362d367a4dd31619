"""Webhook services: subscriptions, the outbox the monitor fills, delivery runs, redelivery.

Delivery is at least once and in order per subscription:
- the monitor writes one `Delivery` per matching event or alert (`deliveries_create`) in the
  transaction that moves its cursor, so nothing committed is skipped or queued twice;
- `subscription_deliver` serves one subscription under a lease (one run at a time), oldest
  delivery first, and stops at the first one that fails: it is retried after an exponential
  backoff (`LEDGERFS_WEBHOOK_BACKOFF_MS`, doubling, capped), and the ones behind it wait; after
  `LEDGERFS_WEBHOOK_MAX_ATTEMPTS` it is given up (`failed`) and the next one goes;
- a receiver that got a POST but whose answer was lost gets it again: receivers deduplicate by
  the `LedgerFS-Delivery` header (or the event id in the body).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from aml.services import alert_json
from config.version import VERSION
from ledger.api.eventjson import stored_event_json
from ledger.core.chain import StoredEvent
from ledger.core.events import EventType
from webhooks.core.signature import SIGNATURE_HEADER, signature_header
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.sender import Sender
from webhooks.targets import url_check

AML_ALERT = "aml.alert"
EVENT_TYPES = frozenset({*(t.value for t in EventType), AML_ALERT})
RUN_SECONDS = 20.0
"""A delivery run stops after this long and asks to be run again (other tasks get a turn)."""
RUN_BATCH = 100
LEASE_SECONDS = 120
SUBSCRIPTIONS_REFRESH_SECONDS = 1.0


class WebhookError(Exception):
    """Root of the webhook services' exceptions; `code` is stable for API clients."""

    code = "webhook_error"


class EventTypesInvalid(WebhookError):
    code = "webhook_event_types_invalid"


def event_types_check(event_types) -> list[str]:
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise EventTypesInvalid("event_types must be a list of event type names")
    unknown = sorted(set(event_types) - EVENT_TYPES)
    if unknown:
        raise EventTypesInvalid(
            f"unknown event types {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    return sorted(set(event_types))


def subscription_validate(*, url: str, event_types) -> list[str]:
    """Check a subscription's URL and event types (on create and update); returns the
    normalised event types. Raises `webhooks.targets.TargetRefused` or `EventTypesInvalid`."""
    url_check(url)
    return event_types_check(event_types)


# -- the outbox (monitor side) --------------------------------------------------------------------

class ActiveSubscriptions:
    """The active subscriptions, re-read at most once a second (edits apply within it)."""

    def __init__(self) -> None:
        self._loaded_at = float("-inf")
        self._subscriptions: list[Subscription] = []

    def get(self) -> list[Subscription]:
        if time.monotonic() - self._loaded_at >= SUBSCRIPTIONS_REFRESH_SECONDS:
            self._subscriptions = list(Subscription.objects.filter(active=True))
            self._loaded_at = time.monotonic()
        return self._subscriptions


def deliveries_create(
    *, subscriptions: list[Subscription], ledger: str, events: list[StoredEvent],
    bodies: list[dict], alerts: list,
) -> set[int]:
    """Queue a delivery per subscription for every matching event and alert, in seq order (an
    event's alerts right after it). Returns the ids of the subscriptions that got some."""
    if not subscriptions:
        return set()
    alerts_of: dict[int, list] = defaultdict(list)
    for alert in alerts:
        alerts_of[alert.seq].append(alert)
    alert_subscribers = [s for s in subscriptions if s.wants(ledger, AML_ALERT)]
    now = timezone.now()
    rows: list[Delivery] = []
    for event, body in zip(events, bodies, strict=True):
        subscribers = [s for s in subscriptions if s.wants(ledger, body["type"])]
        if subscribers:
            payload = orjson.dumps({"type": body["type"], "ledger": ledger, "seq": event.seq,
                                    "event_id": body["id"], "event": stored_event_json(event)})
            rows += [_delivery(s, body["type"], ledger, event.seq, body["id"], payload, now)
                     for s in subscribers]
        for alert in alerts_of.get(event.seq, ()) if alert_subscribers else ():
            payload = orjson.dumps({"type": AML_ALERT, "ledger": ledger, "seq": event.seq,
                                    "event_id": body["id"], "alert": alert_json(alert)})
            rows += [_delivery(s, AML_ALERT, ledger, event.seq, body["id"], payload, now)
                     for s in alert_subscribers]
    Delivery.objects.bulk_create(rows, batch_size=1_000)
    return {row.subscription_id for row in rows}


def _delivery(subscription, event_type, ledger, seq, event_id, payload: bytes, now) -> Delivery:
    return Delivery(subscription_id=subscription.pk, event_type=event_type, ledger=ledger,
                    seq=seq, event_id=event_id, payload=payload.decode(), next_attempt_at=now)


# -- delivery runs (worker side) ------------------------------------------------------------------

def backoff_seconds(attempts: int) -> float:
    """The wait before the next attempt after `attempts` failed ones."""
    first = settings.LEDGERFS_WEBHOOK_BACKOFF_MS / 1000
    return min(first * 2 ** (attempts - 1), settings.LEDGERFS_WEBHOOK_BACKOFF_MAX_SECONDS)


def subscription_deliver(*, subscription_id: int) -> float | None:
    """Deliver the subscription's due deliveries, oldest first. Returns in how many seconds to
    run again (a retry due later, or work left), or None when nothing is pending."""
    subscription = Subscription.objects.filter(pk=subscription_id, active=True).first()
    if subscription is None or not _lease_take(subscription_id):
        return None  # gone, paused, or another run is serving it (and will look again)
    sender = Sender(settings.LEDGERFS_WEBHOOK_TIMEOUT_SECONDS)
    try:
        again = _run(subscription, sender)
    finally:
        sender.close()
        Subscription.objects.filter(pk=subscription_id).update(lease_until=None)
    if again is None and _has_due(subscription_id):
        again = 0.0  # queued while we held the lease: their kick found it taken
    return again


def _lease_take(subscription_id: int) -> bool:
    now = timezone.now()
    taken = Subscription.objects.filter(pk=subscription_id).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    ).update(lease_until=now + timedelta(seconds=LEASE_SECONDS))
    return taken == 1


def _has_due(subscription_id: int) -> bool:
    return Delivery.objects.filter(
        subscription_id=subscription_id, status=Delivery.Status.PENDING,
        next_attempt_at__lte=timezone.now(),
    ).exists()


def _run(subscription: Subscription, sender: Sender) -> float | None:
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        batch = list(Delivery.objects.filter(
            subscription=subscription, status=Delivery.Status.PENDING).order_by("id")[:RUN_BATCH])
        if not batch:
            return None
        done: list[Delivery] = []
        log: list[Attempt] = []
        try:
            for delivery in batch:
                now = timezone.now()
                if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
                    return (delivery.next_attempt_at - now).total_seconds()
                if time.monotonic() > deadline:
                    return 0.0
                log.append(_attempt(subscription, delivery, sender))
                done.append(delivery)
                if delivery.status == Delivery.Status.PENDING:
                    return backoff_seconds(delivery.attempts)
        finally:
            _record(done, log)
        Subscription.objects.filter(pk=subscription.pk).update(
            lease_until=timezone.now() + timedelta(seconds=LEASE_SECONDS))


def _attempt(subscription: Subscription, delivery: Delivery, sender: Sender) -> Attempt:
    body = delivery.payload.encode()
    started = timezone.now()
    clock = time.monotonic()
    delivery.attempts += 1
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"LedgerFS-Webhooks/{VERSION}",
        SIGNATURE_HEADER: signature_header(subscription.secret, int(time.time()), body),
        "LedgerFS-Delivery": str(delivery.pk),
        "LedgerFS-Event-Type": delivery.event_type,
        "LedgerFS-Attempt": str(delivery.attempts),
    }
    status_code, error = sender.post(subscription.url, body, headers)
    if status_code is not None and not 200 <= status_code < 300:
        error = f"HTTP {status_code}"
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status = Delivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.next_attempt_at = None
    elif delivery.attempts >= settings.LEDGERFS_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = Delivery.Status.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = timezone.now() + timedelta(
            seconds=backoff_seconds(delivery.attempts))
    return Attempt(delivery=delivery, number=delivery.attempts, started_at=started,
                   duration_ms=int((time.monotonic() - clock) * 1000), status_code=status_code,
                   error=error)


def _record(done: list[Delivery], log: list[Attempt]) -> None:
    if not done:
        return
    with transaction.atomic():
        Delivery.objects.bulk_update(done, ["status", "attempts", "next_attempt_at",
                                            "last_status_code", "last_error", "delivered_at"])
        Attempt.objects.bulk_create(log)


def subscriptions_due() -> list[int]:
    """Active subscriptions with a delivery due and no run serving them."""
    now = timezone.now()
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
    return list(
        Subscription.objects.filter(active=True, pk__in=due.values("subscription_id"))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", flat=True)
    )


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Queue a delivery again, now, with a fresh set of attempts (delivered or given up alike).
    It goes out before the subscription's newer pending deliveries."""
    delivery.status = Delivery.Status.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    from webhooks.dispatch import deliveries_kick

    transaction.on_commit(lambda: deliveries_kick([delivery.subscription_id]))
    return delivery

