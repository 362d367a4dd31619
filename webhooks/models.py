"""Webhook subscriptions, their deliveries and every delivery attempt.

Entities:
- `Subscription`: where to POST (URL), the shared secret that signs each body, which event
  types (empty: all, `aml.alert` included) of which ledger (blank: all), and whether it is
  active. `lease_until` marks a delivery run in progress, so one subscription is served by one
  worker at a time: that is what keeps its deliveries in seq order.
- `Delivery`: one event (or AML alert) to deliver to one subscription, created by the monitor
  in the transaction that moves its cursor (an outbox), with the exact body to send. Rows of a
  subscription are delivered in id order, which is seq order.
- `Attempt`: one POST of a delivery and its outcome: the delivery log.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class Subscription(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField("URL", max_length=2000)
    secret = models.CharField(
        max_length=200, default=secret_generate,
        help_text="Signs every delivery (HMAC-SHA256); give it to the receiver.",
    )
    event_types = models.JSONField(
        default=list, blank=True,
        help_text='Event types to deliver, e.g. ["transfer", "aml.alert"]; empty: all.',
    )
    ledger = models.CharField(max_length=12, blank=True, help_text="Blank: every ledger.")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "webhook subscription"

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def wants(self, ledger: str, event_type: str) -> bool:
        return (self.active and self.ledger in ("", ledger)
                and (not self.event_types or event_type in self.event_types))


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed", "failed (gave up)"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(max_length=32)
    ledger = models.CharField(max_length=12)
    seq = models.BigIntegerField()
    event_id = models.CharField(max_length=64)
    payload = models.TextField(help_text="The JSON body, sent byte for byte on every attempt.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["subscription", "id"], condition=Q(status="pending"),
                         name="delivery_pending"),
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"),
                         name="delivery_pending_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.seq} -> {self.subscription_id} ({self.status})"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"
