"""API-key authentication for django-ninja routers: `require_scope("read" | "write" | "admin")`.

    from apiaccess.auth import require_scope
    @router.get("/things", auth=require_scope("read"))
    def things(request): ...   # request.auth is the ApiKey, request.user its client's user

No key, or not a Bearer header: 401 `authentication_required`. A key that is unknown, revoked
or malformed: 401 `api_key_invalid`. A valid key without the scope: 403 `scope_required`.
"""

from __future__ import annotations

from functools import cache

from django.http import HttpRequest
from ninja.security import HttpBearer

from apiaccess.errors import ApiError
from apiaccess.keys import api_key_authenticate
from apiaccess.models import SCOPES, ApiKey


class ApiKeyAuth(HttpBearer):
    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = api_key_authenticate(token)
        if key is None:
            raise ApiError(401, "api_key_invalid", "the API key is unknown or revoked")
        if not key.has_scope(self.scope):
            raise ApiError(403, "scope_required", f"this operation needs the {self.scope} scope",
                           {"scope": self.scope, "key_scopes": key.scopes})
        # Permission checks then treat an API client like any other user.
        request.user = key.client.user
        return key


@cache
def require_scope(scope: str) -> ApiKeyAuth:
    """The ninja `auth=` value for operations that need `scope`."""
    return ApiKeyAuth(scope)


def command_client(request: HttpRequest) -> str:
    """The `client` for ledger commands sent by this request (scopes idempotency keys)."""
    return request.auth.client.command_client
