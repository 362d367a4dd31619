"""The operator console: ledger state is read-only here; actions go through the services.

Opening, freezing and minting issue ledger commands through `ledger.services` (the same path as
the API) and are audit-logged with the acting user. Each action needs its own permission
(`ledger.open_ledger_account`, `ledger.freeze_ledger_account`, `ledger.mint_ledger_money`).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from config.admin_base import ReadOnlyAdmin
from ledger import services
from ledger.core.commands import MAX_AMOUNT
from ledger.models import (
    Account,
    ClearingAccount,
    Hold,
    Ledger,
    OperatorAction,
    ProjectionCursor,
)
from ledger.permissions import (
    account_view_allowed,
    accounts_view_all,
    accounts_visible,
    accounts_visible_any,
)


@admin.register(Ledger)
class LedgerAdmin(admin.ModelAdmin):
    list_display = ("code", "scale", "created_at")
    fields = ("code", "scale")

    def get_readonly_fields(self, request, obj=None):
        return ("code", "scale") if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if change:
            return
        ledger, _ = services.ledger_create(code=obj.code, scale=obj.scale)
        obj.pk = ledger.pk


class OpenAccountForm(forms.Form):
    ledger = forms.ModelChoiceField(queryset=Ledger.objects.all())
    did = forms.CharField(label="DID", max_length=256)
    kind = forms.ChoiceField(
        choices=[(k, k) for k in ("user", "clearing", "fee_pool", "reserve")], initial="user"
    )
    tags = forms.CharField(required=False, help_text="Comma-separated.")
    safeguarding = forms.ChoiceField(
        choices=[("", "default for the kind")] + list(Account.Safeguarding.choices),
        required=False,
    )


class MintForm(forms.Form):
    amount = forms.IntegerField(min_value=1, max_value=MAX_AMOUNT, help_text="Minor units.")


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = (
        "did", "ledger", "kind", "status", "available", "held", "bonded", "fee", "promo",
        "safeguarding",
    )
    list_filter = ("ledger", "kind", "status", "safeguarding")
    search_fields = ("id", "did")
    actions = ("freeze_accounts", "unfreeze_accounts", "mint_into_account")
    change_list_template = "admin/ledger/account/change_list.html"

    # Guardian object permissions (ledger.permissions): a support user sees the accounts
    # granted to them, an auditor (model-level view permission) sees all.
    def get_queryset(self, request):
        return accounts_visible(request.user, super().get_queryset(request))

    def has_module_permission(self, request):
        return super().has_module_permission(request) or accounts_visible_any(request.user)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return accounts_visible_any(request.user)
        return account_view_allowed(request.user, obj.pk)

    def has_open_ledger_account_permission(self, request):
        return request.user.has_perm("ledger.open_ledger_account")

    def has_freeze_ledger_account_permission(self, request):
        return request.user.has_perm("ledger.freeze_ledger_account")

    def has_mint_ledger_money_permission(self, request):
        return request.user.has_perm("ledger.mint_ledger_money")

    def get_urls(self):
        return [
            path("open/", self.admin_site.admin_view(self.open_account_view),
                 name="ledger_account_open"),
            *super().get_urls(),
        ]

    def open_account_view(self, request):
        if not self.has_open_ledger_account_permission(request):
            raise PermissionDenied
        form = OpenAccountForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            tags = [t.strip() for t in data["tags"].split(",") if t.strip()]
            outcome = services.account_open(
                user=request.user, ledger=data["ledger"], did=data["did"], kind=data["kind"],
                tags=tags, safeguarding=data["safeguarding"] or None,
            )
            self._report(request, outcome, f"Account for {data['did']} opened.")
            if outcome.ok:
                return redirect("admin:ledger_account_changelist")
        context = {
            **self.admin_site.each_context(request), "title": "Open account", "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/ledger/account/open.html", context)

    @admin.action(description="Freeze selected accounts", permissions=["freeze_ledger_account"])
    def freeze_accounts(self, request, queryset):
        for account in queryset:
            self._report(request, services.account_freeze(user=request.user, account=account),
                         f"{account} frozen.")

    @admin.action(description="Unfreeze selected accounts",
                  permissions=["freeze_ledger_account"])
    def unfreeze_accounts(self, request, queryset):
        for account in queryset:
            self._report(request, services.account_unfreeze(user=request.user, account=account),
                         f"{account} unfrozen.")

    @admin.action(description="Mint money into the selected account",
                  permissions=["mint_ledger_money"])
    def mint_into_account(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one account to mint into.",
                              messages.ERROR)
            return None
        account = queryset.get()
        form = MintForm(request.POST if "amount" in request.POST else None)
        if form.is_valid():
            outcome = services.money_mint(
                user=request.user, account=account, amount=form.cleaned_data["amount"]
            )
            self._report(request, outcome, f"Minted {form.cleaned_data['amount']} into {account}.")
            return None
        context = {
            **self.admin_site.each_context(request), "title": f"Mint into {account}",
            "form": form, "account": account, "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/ledger/account/mint.html", context)

    def _report(self, request, outcome, success: str) -> None:
        if outcome.ok:
            self.message_user(request, success, messages.SUCCESS)
        else:
            self.message_user(request, f"Rejected by the ledger: {outcome.result.code.name}",
                              messages.ERROR)


@admin.register(ClearingAccount)
class ClearingAccountAdmin(AccountAdmin):
    list_display = ("did", "ledger", "status", "available", "tags", "last_seq")
    actions = ()


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ("id", "ledger", "account", "beneficiary", "amount", "captured", "status",
                    "expires_at_ns", "created_seq")
    list_filter = ("ledger", "status")
    search_fields = ("id", "account__did", "account__id")

    def get_queryset(self, request):
        holds = super().get_queryset(request)
        if accounts_view_all(request.user):
            return holds
        return holds.filter(account__in=accounts_visible(request.user))


@admin.register(ProjectionCursor)
class ProjectionCursorAdmin(ReadOnlyAdmin):
    list_display = ("ledger", "last_seq", "updated_at")


@admin.register(OperatorAction)
class OperatorActionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "ledger", "action", "code", "event_seq")
    list_filter = ("action", "code", "ledger")
    search_fields = ("user__username", "event_id")
