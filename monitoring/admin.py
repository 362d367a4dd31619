"""Operator console: how far the monitor has got on each ledger (read-only)."""

from django.contrib import admin

from monitoring.models import MonitorState


@admin.register(MonitorState)
class MonitorStateAdmin(admin.ModelAdmin):
    list_display = ("ledger", "last_seq", "outstanding_minor", "customer_funds_minor",
                    "updated_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
