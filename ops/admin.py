"""Documents in the operator console: listed with the accounts the user may view."""

from django.contrib import admin

from ledger.permissions import accounts_view_all, accounts_visible
from ops.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("filename", "kind", "account", "event_id", "size", "uploaded_by",
                    "uploaded_at")
    list_filter = ("kind",)
    search_fields = ("filename", "account__id", "account__did", "event_id", "sha256")
    readonly_fields = ("filename", "size", "sha256", "uploaded_by", "uploaded_at")
    fields = ("kind", "account", "event_id", "file", *readonly_fields)
    raw_id_fields = ("account",)

    def get_queryset(self, request):
        documents = super().get_queryset(request)
        if accounts_view_all(request.user):
            return documents
        return documents.filter(account__in=accounts_visible(request.user))

    def has_add_permission(self, request):
        return False  # uploads go through the ops API, which hashes them

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
