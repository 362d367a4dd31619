"""Compliance documents (KYC/AML files) attached to an account or a transaction (event).

Files live under `LEDGERFS_DATA_DIR/documents/`; the row keeps the SHA-256 of the content as
uploaded, so a file altered on disk afterwards is detectable. Who may see a document follows
the account it is attached to (`ledger.permissions`); documents about a transaction alone are
for users who may view every account.
"""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q

from ledger.models import Account


class DocumentStorage(FileSystemStorage):
    """Files under LEDGERFS_DATA_DIR/documents, read from the settings at each use."""

    @property
    def base_location(self) -> str:
        return str(settings.LEDGERFS_DATA_DIR / "documents")

    @property
    def location(self) -> str:
        return self.base_location


def documents_storage() -> FileSystemStorage:
    # A callable, so the path stays out of migrations.
    return DocumentStorage()


class Document(models.Model):
    class Kind(models.TextChoices):
        KYC_IDENTITY = "kyc_identity", "KYC: identity"
        KYC_ADDRESS = "kyc_address", "KYC: proof of address"
        KYC_OTHER = "kyc_other", "KYC: other"
        AML_CHECK = "aml_check", "AML check"
        AML_REPORT = "aml_report", "AML report"
        OTHER = "other"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, null=True, blank=True, related_name="documents"
    )
    event_id = models.CharField("event id", max_length=64, blank=True, db_index=True)
    file = models.FileField(storage=documents_storage, upload_to="%Y/%m/")
    filename = models.CharField(max_length=255, help_text="Name of the file as uploaded.")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(account=None) | ~Q(event_id=""),
                name="document_attached_to_account_or_event",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.filename}"
