"""Who may see which accounts: django-guardian object permissions on `Account`.

One rule everywhere (ledger API, ops API, admin; the WebSocket stream and FUSE mount use it
too): a user may view an account when they hold `ledger.view_account` on the model (the
"auditors" group, superusers) or on that account object (a support user it was granted to).
API clients are users too, and the accounts a client opens through the API are granted to it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db.models import QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user

from ledger.models import Account

VIEW_ACCOUNT = "ledger.view_account"
AUDITORS_GROUP = "auditors"
AUDITOR_PERMISSIONS = (
    ("ledger", "view_account"), ("ledger", "view_hold"), ("ledger", "view_ledger"),
    ("ledger", "view_operatoraction"), ("ops", "view_document"),
)


def accounts_view_all(user) -> bool:
    """Whether `user` may view every account (model-level permission)."""
    return user.is_active and user.has_perm(VIEW_ACCOUNT)


def account_view_allowed(user, account_id: str) -> bool:
    if not user.is_active:
        return False
    if user.has_perm(VIEW_ACCOUNT):
        return True
    # Guardian only needs the content type and the primary key, not the row.
    return user.has_perm(VIEW_ACCOUNT, Account(pk=account_id))


def accounts_visible(user, queryset: QuerySet | None = None) -> QuerySet:
    """The accounts of `queryset` (default: all) that `user` may view."""
    queryset = Account.objects.all() if queryset is None else queryset
    return get_objects_for_user(user, VIEW_ACCOUNT, queryset, accept_global_perms=True)


def accounts_visible_any(user) -> bool:
    """Whether `user` may view at least one account (so may open account lists at all)."""
    return accounts_view_all(user) or accounts_visible(user).exists()


def account_view_grant(user, account_ids: Iterable[str]) -> None:
    for account_id in account_ids:
        assign_perm("view_account", user, Account(pk=account_id))


def auditors_group_ensure(*, using: str = "default") -> Group | None:
    """Create the auditors group with its model-level view permissions (idempotent)."""
    group, _ = Group.objects.using(using).get_or_create(name=AUDITORS_GROUP)
    for app_label, codename in AUDITOR_PERMISSIONS:
        permission = Permission.objects.using(using).filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if permission is not None:
            group.permissions.add(permission)
    return group
