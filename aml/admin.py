"""Operator console: AML thresholds and watch list (editable), checks (read-only) and alerts
(status and notes only, through `aml.services.alert_update`, recorded with the acting user)."""

from django import forms
from django.contrib import admin, messages

from aml import services
from aml.models import Alert, AlertAction, AmlCheck, AmlRules, WatchedDid
from config.admin_base import ReadOnlyAdmin


@admin.register(AmlRules)
class AmlRulesAdmin(admin.ModelAdmin):
    list_display = ("ledger", "large_transfer_minor", "velocity_count", "velocity_amount_minor",
                    "structuring_count", "new_account_inflow_minor", "version", "updated_at")
    readonly_fields = ("version", "updated_at", "updated_by")
    fieldsets = (
        (None, {"fields": ("ledger", "version", "updated_at", "updated_by")}),
        ("Large transfer and structuring", {"fields": (
            "large_transfer_minor", "structuring_count", "structuring_margin_percent",
            "structuring_window_seconds")}),
        ("Velocity", {"fields": (
            "velocity_count", "velocity_amount_minor", "velocity_window_seconds")}),
        ("New accounts", {"fields": ("new_account_age_seconds", "new_account_inflow_minor")}),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "ledger") if obj is not None else fields

    def save_model(self, request, obj, form, change):
        services.rules_save(rules=obj, user=request.user)


@admin.register(WatchedDid)
class WatchedDidAdmin(admin.ModelAdmin):
    list_display = ("did", "reason", "active", "added_by", "updated_at")
    list_filter = ("active",)
    search_fields = ("did", "reason")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.added_by = request.user
        super().save_model(request, obj, form, change)


class AlertForm(forms.ModelForm):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                           help_text="Recorded in the alert's history with your name.")

    class Meta:
        model = Alert
        fields = ("status",)


class AlertActionInline(admin.TabularInline):
    model = AlertAction
    fields = ("created_at", "user", "from_status", "to_status", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    form = AlertForm
    list_display = ("id", "created_at", "ledger", "rule", "status", "account", "amount",
                    "event_id")
    list_filter = ("status", "rule", "ledger")
    search_fields = ("account", "event_id")
    readonly_fields = ("ledger", "rule", "account", "event_id", "seq", "amount", "detail",
                       "created_at", "updated_at")
    fields = (*readonly_fields, "status", "note")
    inlines = [AlertActionInline]
    actions = ["mark_investigating", "mark_closed"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # The alert changes only through the service, which writes the history row.
        services.alert_update(alert_id=obj.pk, user=request.user,
                              status=form.cleaned_data["status"],
                              note=form.cleaned_data["note"])

    def _mark(self, request, queryset, status: str) -> None:
        for alert in queryset:
            services.alert_update(alert_id=alert.pk, user=request.user, status=status)
        self.message_user(request, f"{queryset.count()} alert(s) marked {status}.",
                          messages.SUCCESS)

    @admin.action(description="Mark selected alerts as investigating",
                  permissions=["change"])
    def mark_investigating(self, request, queryset):
        self._mark(request, queryset, Alert.Status.INVESTIGATING)

    @admin.action(description="Close selected alerts", permissions=["change"])
    def mark_closed(self, request, queryset):
        self._mark(request, queryset, Alert.Status.CLOSED)


@admin.register(AmlCheck)
class AmlCheckAdmin(ReadOnlyAdmin):
    """Written by the monitor as it screens the log: shown, never edited."""

    list_display = ("event_id", "ledger", "seq", "event_type", "amount", "outcome",
                    "checked_at")
    list_filter = ("outcome", "ledger", "event_type")
    search_fields = ("event_id", "payer", "payee")
