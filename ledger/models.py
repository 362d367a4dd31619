"""Read models of the ledger, projected from committed events.

The write model is the RocksDB event log of each shard (`ledger.eventstore`); nothing here is
the source of truth. The projector (`ledger.projector`) keeps these tables in step with the
log through a per-ledger cursor and can rebuild them from seq 0 at any time.

Entities:
- `Ledger`: a shard (a currency or domain) with its minor-unit scale. The registry row is
  written by the `ledger_create` service; the shard's own genesis events open its issuance
  (system) and fee-pool accounts.
- `Account`: one row per opened account with its five balance buckets. Every bucket of every
  non-system account is >= 0; the database enforces it too (CHECK constraints), so a projector
  bug cannot silently store a negative customer balance.
- `ClearingAccount`: the accounts of kind `clearing`, shown on their own for settlement work.
- `Hold`: funds moved from available to held, until released, cancelled or expired.
- `ProjectionCursor`: the last seq of each ledger applied to these tables.
- `OperatorAction`: the audit log of operator actions taken in the admin (who, what, outcome).

Zero-sum rule: the legs of every event sum to zero, so the buckets of all accounts of a ledger
(including the issuance account, which may go negative) sum to zero.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

BUCKET_FIELDS = ("available", "held", "bonded", "fee", "promo")


class Ledger(models.Model):
    code = models.CharField(max_length=12, unique=True)
    scale = models.PositiveSmallIntegerField(help_text="Digits after the decimal point.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(scale__lte=18), name="ledger_scale_at_most_18"),
        ]

    def __str__(self) -> str:
        return self.code


class Account(models.Model):
    class Kind(models.TextChoices):
        USER = "user"
        CLEARING = "clearing"
        FEE_POOL = "fee_pool"
        RESERVE = "reserve"
        SYSTEM = "system"

    class Status(models.TextChoices):
        OPEN = "open"
        FROZEN = "frozen"
        CLOSED = "closed"

    class Safeguarding(models.TextChoices):
        CUSTOMER_FUNDS = "customer_funds", "customer funds"
        OWN_FUNDS = "own_funds", "own funds"
        NOT_APPLICABLE = "n/a", "not applicable"

    id = models.CharField(primary_key=True, max_length=64)
    ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="accounts")
    did = models.CharField("DID", max_length=256)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    tags = models.JSONField(default=list, blank=True)
    safeguarding = models.CharField(max_length=16, choices=Safeguarding.choices)
    available = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    bonded = models.BigIntegerField(default=0)
    fee = models.BigIntegerField(default=0)
    promo = models.BigIntegerField(default=0)
    position = models.PositiveIntegerField(help_text="Order of opening in its ledger.")
    opened_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()

    class Meta:
        ordering = ["ledger", "position"]
        constraints = [
            models.UniqueConstraint(fields=["ledger", "did"], name="account_did_unique_per_ledger"),
            models.UniqueConstraint(
                fields=["ledger", "position"], name="account_position_unique_per_ledger"
            ),
            *(
                models.CheckConstraint(
                    condition=Q(kind="system") | Q(**{f"{bucket}__gte": 0}),
                    name=f"account_{bucket}_not_negative",
                )
                for bucket in BUCKET_FIELDS
            ),
        ]
        permissions = [
            ("open_ledger_account", "Can open accounts through the ledger"),
            ("freeze_ledger_account", "Can freeze and unfreeze accounts"),
            ("mint_ledger_money", "Can mint money into accounts"),
        ]

    def __str__(self) -> str:
        return f"{self.did} ({self.ledger_id})"

    @property
    def balances(self) -> dict[str, int]:
        return {bucket: getattr(self, bucket) for bucket in BUCKET_FIELDS}


class ClearingAccountManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(kind=Account.Kind.CLEARING)


class ClearingAccount(Account):
    """Accounts of kind `clearing`: per-domain settlement accounts (seed 000, CLD-US-009)."""

    objects = ClearingAccountManager()

    class Meta:
        proxy = True


class Hold(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        RELEASED = "released"
        CANCELLED = "cancelled"
        EXPIRED = "expired"

    id = models.CharField(primary_key=True, max_length=128)
    ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT, related_name="holds")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    beneficiary = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    amount = models.BigIntegerField()
    captured = models.BigIntegerField(null=True, blank=True)
    expires_at_ns = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    created_seq = models.BigIntegerField()
    resolved_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["ledger", "created_seq"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.id


class ProjectionCursor(models.Model):
    ledger = models.OneToOneField(Ledger, on_delete=models.CASCADE, primary_key=True)
    last_seq = models.BigIntegerField(default=-1)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.ledger_id} @ {self.last_seq}"


class OperatorAction(models.Model):
    """One operator action through the admin: who did what, and what the ledger answered."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    ledger = models.ForeignKey(Ledger, on_delete=models.PROTECT)
    action = models.CharField(max_length=32)
    command = models.JSONField()
    code = models.CharField(max_length=64)
    event_id = models.CharField(max_length=64, blank=True)
    event_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} {self.action} -> {self.code}"
