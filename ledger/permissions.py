"""Who may see which accounts: django-guardian object permissions on `Account`.

One rule everywhere (ledger API, ops API, admin; the WebSocket stream and FUSE mount use it
too): a user may view an account when they hold `ledger.view_account` on the model (the
"auditors" group, superusers) or on that account object (a support user it was granted to).
API clients are users too, and the accounts a client opens through the API are granted to it.

`account_view_allowed` keeps, per user, whether they may view every account and the set of
account ids granted to them (loaded in one query), for `GRANT_CACHE_SECONDS`, so the API's
balance reads need no permission queries; the fast lane renews them before they expire while
they are in use (`account_view_renew`), reading only the grant rows added since when nothing
else changed (`_grants_added`). Grants made through `account_view_grant` show at once
in this process; grants made elsewhere, group changes and revocations take effect within that
time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from ledger.models import Account

VIEW_ACCOUNT = "ledger.view_account"
AUDITORS_GROUP = "auditors"
AUDITOR_PERMISSIONS = (
    ("ledger", "view_account"), ("ledger", "view_hold"), ("ledger", "view_ledger"),
    ("ledger", "view_operatoraction"), ("ops", "view_document"),
)


def accounts_view_all(user) -> bool:
    """Whether `user` may view every account (model-level permission)."""
    return user.is_authenticated and user.is_active and user.has_perm(VIEW_ACCOUNT)


GRANT_CACHE_SECONDS = 5.0
GRANT_RENEW_AHEAD_SECONDS = 1.0
GRANT_CACHE_MAX_IDS = 100_000
"""Beyond this many grants a user's set is not cached; each check asks guardian instead."""

# user -> (monotonic expiry, ids of the accounts granted to the user or their groups, what the
# two grant tables held for the user then: `_Seen` of the user's rows and of their groups').
_granted: dict[tuple, tuple[float, set[str] | None, tuple[_Seen, _Seen] | None]] = {}
# user -> (monotonic expiry, whether the user may view every account).
_view_all: dict[tuple, tuple[float, bool]] = {}


def _user_key(user) -> tuple:
    # With the creation time, a reused primary key (SQLite, rolled-back tests) is a new user.
    return user.pk, getattr(user, "date_joined", None)


def _view_permission() -> Permission:
    return Permission.objects.get_by_natural_key("view_account", "ledger", "account")


class _Seen(NamedTuple):
    """What a grant table held for a user when their ids were loaded: how many rows, and the
    largest row id (-1: none)."""

    rows: int
    top: int


def _granted_ids(user, *, renew: bool = False) -> set[str] | None:
    now = time.monotonic()
    key = _user_key(user)
    cached = _granted.get(key)
    if cached is not None and cached[0] > now and not renew:
        return cached[1]
    permission = _view_permission()
    tables = (get_user_obj_perms_model().objects.filter(user=user, permission=permission),
              get_group_obj_perms_model().objects.filter(group__user=user,
                                                         permission=permission))
    loaded = _grants_added(tables, cached) if cached is not None else None
    if loaded is None:
        loaded = _grants_all(tables)
    ids, seen = loaded
    if ids is not None and len(ids) > GRANT_CACHE_MAX_IDS:
        ids, seen = None, None
    _granted[key] = (now + GRANT_CACHE_SECONDS, ids, seen)
    return ids


def _grants_all(tables) -> tuple[set[str] | None, tuple[_Seen, _Seen] | None]:
    """Every grant of `tables`: (the object ids, what each table held), or (None, None) when
    there are more than `GRANT_CACHE_MAX_IDS`."""
    ids: set[str] = set()
    seen = []
    for table in tables:
        rows = list(table.values_list("id", "object_pk")[:GRANT_CACHE_MAX_IDS + 1])
        if len(rows) > GRANT_CACHE_MAX_IDS:
            return None, None
        ids.update(pk for _, pk in rows)
        seen.append(_Seen(len(rows), max((row_id for row_id, _ in rows), default=-1)))
    return ids, (seen[0], seen[1])


def _grants_added(tables, cached) -> tuple[set[str], tuple[_Seen, _Seen]] | None:
    """The remembered grants with the rows added since, when rows were only added; None when
    anything else changed (a grant taken away, a group joined or left: a full load then).

    Why: a renewal reloaded every grant of a client every few seconds (10,000 rows for the
    benchmark's client, about 1.5% of a core across the web workers under load). Row ids
    only grow, so the rows added since are those above the largest id seen; if the table's
    count is then more than what was seen plus what was added, some rows went away or came
    in below it. The new rows are read before the count, so a change between the two reads
    shows as a mismatch too."""
    _, remembered, seen = cached
    if remembered is None or seen is None:
        return None
    added_ids: set[str] = set()
    now_seen = []
    for table, before in zip(tables, seen, strict=True):
        added = list(table.filter(id__gt=before.top).values_list("id", "object_pk"))
        if table.count() != before.rows + len(added):
            return None
        added_ids.update(pk for _, pk in added)
        now_seen.append(_Seen(before.rows + len(added),
                              max((row_id for row_id, _ in added), default=before.top)))
    return (remembered | added_ids if added_ids else remembered), (now_seen[0], now_seen[1])


def _views_all(user, *, renew: bool = False) -> bool:
    """`user.has_perm(VIEW_ACCOUNT)`, remembered like the grants."""
    now = time.monotonic()
    cached = _view_all.get(_user_key(user))
    if cached is not None and cached[0] > now and not renew:
        return cached[1]
    allowed = user.has_perm(VIEW_ACCOUNT)
    _view_all[_user_key(user)] = (now + GRANT_CACHE_SECONDS, allowed)
    return allowed


def account_view_remembered(user, account_id: str) -> bool | None:
    """`account_view_allowed` from what this process remembers; None when the answer would
    need a database query (callers that must not query then take the full path)."""
    if not (user.is_authenticated and user.is_active):
        return False
    now = time.monotonic()
    key = _user_key(user)
    views_all = _view_all.get(key)
    if views_all is None or views_all[0] <= now:
        return None
    if views_all[1]:
        return True
    granted = _granted.get(key)
    if granted is None or granted[0] <= now or granted[1] is None:
        return None
    return account_id in granted[1]


def account_view_renewal_due(user) -> bool:
    """Whether what this process remembers of `user`'s view permissions expires within
    `GRANT_RENEW_AHEAD_SECONDS`. A caller that answers from memory only
    (`ledger.api.fastlane`) renews it then (`account_view_renew`): once expired, the next
    check takes the full path and reloads every grant while the reads behind it wait."""
    key = _user_key(user)
    deadline = time.monotonic() + GRANT_RENEW_AHEAD_SECONDS
    views_all = _view_all.get(key)
    if views_all is None:
        return False
    if views_all[0] < deadline:
        return True
    granted = _granted.get(key)
    return not views_all[1] and granted is not None and granted[0] < deadline


def account_view_renew(user) -> None:
    """Load `user`'s view permissions again and remember them for another
    `GRANT_CACHE_SECONDS`, expired or not. The user is read again too: Django keeps the
    permissions it has looked up on the user object."""
    fresh = type(user).objects.filter(pk=user.pk).first()
    if fresh is None:  # deleted: nothing of it is remembered any longer
        _view_all.pop(_user_key(user), None)
        _granted.pop(_user_key(user), None)
    elif not _views_all(fresh, renew=True):
        _granted_ids(fresh, renew=True)


def account_view_allowed(user, account_id: str) -> bool:
    remembered = account_view_remembered(user, account_id)
    if remembered is not None:
        return remembered
    if _views_all(user):
        return True
    ids = _granted_ids(user)
    if ids is not None:
        return account_id in ids
    # Guardian only needs the content type and the primary key, not the row.
    return user.has_perm(VIEW_ACCOUNT, Account(pk=account_id))


def grant_cache_clear() -> None:
    """Forget the cached grants (tests, and after changing permissions in bulk)."""
    _granted.clear()
    _view_all.clear()


def accounts_visible(user, queryset: QuerySet | None = None) -> QuerySet:
    """The accounts of `queryset` (default: all) that `user` may view."""
    queryset = Account.objects.all() if queryset is None else queryset
    if not (user.is_authenticated and user.is_active):
        return queryset.none()  # guardian has no anonymous user here (ANONYMOUS_USER_NAME)
    return get_objects_for_user(user, VIEW_ACCOUNT, queryset, accept_global_perms=True)


def accounts_visible_any(user) -> bool:
    """Whether `user` may view at least one account (so may open account lists at all)."""
    return accounts_view_all(user) or accounts_visible(user).exists()


def account_view_grant(user, account_ids: Iterable[str]) -> None:
    """Let `user` view these accounts (idempotent; one insert for any number of them)."""
    ids = list(dict.fromkeys(account_ids))
    if not ids:
        return
    content_type = ContentType.objects.get_for_model(Account)
    permission = _view_permission()
    grants = get_user_obj_perms_model()
    grants.objects.bulk_create(
        [grants(user=user, permission=permission, content_type=content_type, object_pk=pk)
         for pk in ids],
        ignore_conflicts=True, batch_size=1_000,
    )
    cached = _granted.get(_user_key(user))
    if cached is not None and cached[1] is not None:
        cached[1].update(ids)


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
