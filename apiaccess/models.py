"""API clients and their keys.

An `ApiClient` is one integrating system. It acts as a Django user (`user`), so the same
permissions decide what it may read through the APIs as for a person in the admin. Its id
scopes the idempotency keys of the commands it sends (`command_client`), so two clients can
never collide on a key, and rotating a client's keys keeps its idempotency history.

An `ApiKey` belongs to one client and carries scopes (read, write, admin). Only a SHA-256 hash
of the key is stored; the key itself is shown once, when issued. `prefix` (the public part of
the key) finds the row; the hash is then compared in constant time. A revoked key stays in
the table for the audit trail and never authenticates again.
"""

from django.conf import settings
from django.db import models


class Scope(models.TextChoices):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


SCOPES = frozenset(Scope.values)


class ApiClient(models.Model):
    name = models.CharField(max_length=100, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_clients",
        help_text="The user this client acts as: its permissions decide what the client "
                  "may read.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def command_client(self) -> str:
        """The `client` of the ledger commands it sends: the scope of its idempotency keys."""
        return f"api:{self.pk}"


class ApiKey(models.Model):
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="keys")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField("SHA-256 of the key", max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.client} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
