"""Operator console: webhook subscriptions (editable), deliveries with their attempt log
(read-only), and manual redelivery."""

from django import forms
from django.contrib import admin, messages

from webhooks import services
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.targets import TargetRefused


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")

    class Meta:
        model = Subscription
        fields = ("name", "url", "secret", "event_types", "ledger", "active")

    def clean(self):
        cleaned = super().clean()
        if "url" in cleaned and "event_types" in cleaned:
            try:
                cleaned["event_types"] = services.subscription_validate(
                    url=cleaned["url"], event_types=cleaned["event_types"])
            except TargetRefused as exc:
                self.add_error("url", str(exc))
            except services.EventTypesInvalid as exc:
                self.add_error("event_types", str(exc))
        return cleaned


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ("name", "url", "ledger", "event_types", "active", "created_at")
    list_filter = ("active", "ledger")
    search_fields = ("name", "url")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("number", "started_at", "duration_ms", "status_code", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("started_at", "id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "subscription", "event_type", "ledger", "seq", "status",
                    "attempts", "last_status_code", "next_attempt_at", "delivered_at")
    list_filter = ("status", "event_type", "subscription")
    search_fields = ("event_id",)
    list_select_related = ("subscription",)
    readonly_fields = ("subscription", "event_type", "ledger", "seq", "event_id", "status",
                       "attempts", "next_attempt_at", "last_status_code", "last_error",
                       "created_at", "delivered_at", "payload")
    inlines = [AttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver selected deliveries", permissions=["change"])
    def redeliver(self, request, queryset):
        for delivery in queryset:
            services.delivery_redeliver(delivery=delivery)
            self.log_change(request, delivery, "Redelivery requested")
        self.message_user(request, f"{queryset.count()} delivery(ies) queued again.",
                          messages.SUCCESS)
