"""Operator console: how far the monitor has got on each ledger (read-only)."""

from django.contrib import admin

from config.admin_base import ReadOnlyAdmin
from monitoring.models import MonitorState


@admin.register(MonitorState)
class MonitorStateAdmin(ReadOnlyAdmin):
    list_display = ("ledger", "last_seq", "outstanding_minor", "customer_funds_minor",
                    "updated_at")
