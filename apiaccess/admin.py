"""API clients and keys in the operator console. A key is created here or with
`manage.py apikey create`, shown once, and revoked (never deleted) with an action."""

from django import forms
from django.contrib import admin, messages

from apiaccess.keys import ApiKeyError, api_key_issue, api_key_revoke, scopes_parse
from apiaccess.models import SCOPES, ApiClient, ApiKey


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("prefix", "scopes", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at")
    search_fields = ("name", "user__username")
    autocomplete_fields = ("user",)
    inlines = (ApiKeyInline,)

    def has_delete_permission(self, request, obj=None):
        return False


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in sorted(SCOPES)],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ApiKey
        fields = ("client", "scopes")

    def clean_scopes(self):
        try:
            return scopes_parse(self.cleaned_data["scopes"])
        except ApiKeyError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("prefix", "client", "scopes", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "client__name")
    actions = ("revoke_keys",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("client", "prefix", "scopes", "created_at", "revoked_at")

    def get_fields(self, request, obj=None):
        return ("client", "scopes") if obj is None else self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # Keys are immutable; the change view only shows them (revoke with the action).
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, raw_key = api_key_issue(client=obj.client, scopes=form.cleaned_data["scopes"])
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = (
            key.pk, key.prefix, key.key_hash, key.created_at
        )
        self.message_user(
            request, f"New API key (copy it now, it is not shown again): {raw_key}",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke_keys(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)

    def has_revoke_permission(self, request):
        return request.user.has_perm("apiaccess.change_apikey")
