"""AML monitoring: thresholds, watch list, checks and alerts.

Entities:
- `AmlRules`: the thresholds of one ledger's rules (amounts in its minor units), edited in the
  admin; `version` counts the edits and is recorded with every check.
- `WatchedDid`: DIDs whose accounts are watched in every ledger.
- `AmlCheck`: one row per screened transaction (event): every rule's outcome and the overall
  one. Keyed by event id: the FUSE view serves it as `/docs/<tx id>/aml_check.json`.
- `Alert`: one per rule hit (open, investigating, closed), with its history in `AlertAction`
  (who changed what, with a note).

Checks and alerts are written by the monitor (`monitoring.monitor`) in the same transaction
that moves its cursor, so each committed event is screened exactly once; the ledger is a code,
not a foreign key, like everything fed from the event stream.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from aml.core.screening import Rule

RULE_CHOICES = [(rule.value, rule.value.replace("_", " ")) for rule in Rule]


class AmlRules(models.Model):
    ledger = models.CharField(max_length=12, unique=True)
    large_transfer_minor = models.BigIntegerField(
        "large transfer threshold", default=1_000_000,
        help_text="Minor units; a movement of at least this is an alert. 0 turns the large "
                  "transfer and structuring rules off.",
    )
    velocity_count = models.PositiveIntegerField(
        default=20, help_text="Payments out of one account within the window; 0: off.")
    velocity_amount_minor = models.BigIntegerField(
        default=5_000_000, help_text="Total paid out of one account within the window, minor "
                                     "units; 0: off.")
    velocity_window_seconds = models.PositiveIntegerField(default=3_600)
    structuring_count = models.PositiveIntegerField(
        default=3, help_text="Payments just under the large transfer threshold within the "
                             "window; 0: off.")
    structuring_margin_percent = models.PositiveSmallIntegerField(
        default=10, help_text="How far under the threshold counts as just under it.")
    structuring_window_seconds = models.PositiveIntegerField(default=86_400)
    new_account_age_seconds = models.PositiveIntegerField(
        default=7 * 86_400, help_text="Accounts younger than this are new; 0: off.")
    new_account_inflow_minor = models.BigIntegerField(
        default=500_000, help_text="One credit of at least this into a new account is an "
                                   "alert, minor units; 0: off.")
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        editable=False,
    )

    class Meta:
        ordering = ["ledger"]
        verbose_name = verbose_name_plural = "AML rules"
        constraints = [
            models.CheckConstraint(
                condition=Q(large_transfer_minor__gte=0, velocity_amount_minor__gte=0,
                            new_account_inflow_minor__gte=0, structuring_margin_percent__lte=100),
                name="aml_rules_thresholds_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"AML rules of {self.ledger}"


class WatchedDid(models.Model):
    did = models.CharField("DID", max_length=256, unique=True)
    reason = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        editable=False,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["did"]
        verbose_name = "watch-listed DID"

    def __str__(self) -> str:
        return self.did


class AmlCheck(models.Model):
    class Outcome(models.TextChoices):
        CLEAR = "clear"
        ALERT = "alert"

    event_id = models.CharField(max_length=64, primary_key=True)
    ledger = models.CharField(max_length=12)
    seq = models.BigIntegerField()
    event_type = models.CharField(max_length=32)
    ts_ns = models.BigIntegerField(help_text="Event time (writer clock, ns).")
    amount = models.BigIntegerField()
    payer = models.CharField(max_length=64, blank=True)
    payee = models.CharField(max_length=64, blank=True)
    results = models.JSONField(help_text="Each rule evaluated: hit, pass, off or not_applicable.")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    thresholds_version = models.PositiveIntegerField()
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["ledger", "seq"]
        verbose_name = "AML check"
        indexes = [models.Index(fields=["ledger", "seq"], name="aml_check_ledger_seq")]

    def __str__(self) -> str:
        return f"{self.event_id}: {self.outcome}"


class Alert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        INVESTIGATING = "investigating"
        CLOSED = "closed"

    ledger = models.CharField(max_length=12)
    rule = models.CharField(max_length=32, choices=RULE_CHOICES)
    account = models.CharField(max_length=64, blank=True)
    event_id = models.CharField(max_length=64, db_index=True)
    seq = models.BigIntegerField()
    amount = models.BigIntegerField()
    detail = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "AML alert"
        constraints = [
            models.UniqueConstraint(fields=["event_id", "rule", "account"],
                                    name="alert_unique_per_event_rule_account"),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="alert_status_created")]

    def __str__(self) -> str:
        return f"{self.get_rule_display()} on {self.account or self.event_id} ({self.status})"


class AlertAction(models.Model):
    """One change of an alert: its status and/or a note, by a user (None: the monitor)."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="actions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, choices=Alert.Status.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        who = self.user or "monitor"
        return f"{who}: {self.from_status or '-'} -> {self.to_status}"
