"""Object permissions in the ledger API: a request may read an account only if its user may
view it (`ledger.permissions`); otherwise 403, whether or not the account exists."""

from django.http import HttpRequest

from apiaccess.errors import ApiError
from ledger.permissions import account_view_allowed, accounts_view_all


def account_read_check(request: HttpRequest, account_id: str) -> None:
    if not account_view_allowed(request.user, account_id):
        raise ApiError(403, "permission_denied", "you may not view this account",
                       {"account": account_id})


def ledger_read_check(request: HttpRequest) -> None:
    """Reads across all accounts of a ledger need the model-level view permission."""
    if not accounts_view_all(request.user):
        raise ApiError(403, "permission_denied",
                       "reading across accounts needs permission to view every account; "
                       "filter by an account you may view")
