"""Read models of attestation for the operator console; the seal stores are the truth.

Entities:
- `Block`: one row per sealed block of a ledger: the range of events it covers, its own Merkle
  root, the event-tree size and root after it, the state root and the liabilities total
  (`state_sum`), and the hash chaining it to the previous header.
- `Checkpoint`: the signed C2SP checkpoint of each block, with the key that signed it.
- `DigestDelivery`: per ledger and digest sink, how far checkpoints have been delivered and
  the last failure, so an operator sees a sink falling behind.

Rows are copied from the shard's seal store after each seal (`attestation.services`), and a
missing row is re-copied on the next seal, so nothing here can disagree with the seal store
for long; the ledger is a code, not a foreign key, because a sealer may run where the
registry row has not been projected yet.
"""

from django.db import models


class Block(models.Model):
    ledger = models.CharField(max_length=12)
    height = models.PositiveBigIntegerField()
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    block_root = models.CharField(max_length=64)
    tree_size = models.PositiveBigIntegerField()
    tree_root = models.CharField(max_length=64)
    state_root = models.CharField(max_length=64)
    state_sum = models.BigIntegerField(help_text="Outstanding liabilities, minor units.")
    prev_header_hash = models.CharField(max_length=64)
    header_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(help_text="Seal time.")

    class Meta:
        ordering = ["ledger", "-height"]
        constraints = [
            models.UniqueConstraint(fields=["ledger", "height"], name="block_height_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.ledger} block {self.height}"


class Checkpoint(models.Model):
    ledger = models.CharField(max_length=12)
    height = models.PositiveBigIntegerField()
    tree_size = models.PositiveBigIntegerField()
    root_hash = models.CharField(max_length=64)
    state_root = models.CharField(max_length=64)
    state_sum = models.BigIntegerField(help_text="Outstanding liabilities, minor units.")
    note = models.TextField(help_text="The signed note (C2SP tlog-checkpoint).")
    public_key = models.CharField(max_length=200, help_text="Verifier key that signed it.")
    created_at = models.DateTimeField(help_text="Seal time.")

    class Meta:
        ordering = ["ledger", "-height"]
        constraints = [
            models.UniqueConstraint(fields=["ledger", "height"], name="checkpoint_height_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.ledger} checkpoint {self.height} (size {self.tree_size})"


class DigestDelivery(models.Model):
    class Status(models.TextChoices):
        OK = "ok"
        FAILING = "failing"
        CONFLICT = "conflict", "conflict (sink holds a different checkpoint)"

    ledger = models.CharField(max_length=12)
    sink = models.CharField(max_length=64)
    delivered_height = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row.")
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["ledger", "sink"]
        verbose_name_plural = "digest deliveries"
        constraints = [
            models.UniqueConstraint(fields=["ledger", "sink"], name="digest_delivery_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.ledger} -> {self.sink} @ {self.delivered_height}"
