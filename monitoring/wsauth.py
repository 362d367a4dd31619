"""WebSocket handshake checks: the browser's Origin, and API keys.

- `BrowserOriginValidator`: browsers send `Origin` on every WebSocket handshake, and it must
  name one of `ALLOWED_HOSTS`, so no other site can use a visitor's session cookie on our
  sockets. Clients that send no Origin (programs, which authenticate with API keys) pass.
- `ApiKeyAuthMiddleware`: `Authorization: Bearer <key>` on the handshake, or `?api_key=<key>`
  for browsers (which cannot set headers; prefer the header, query strings end up in logs).
  A key with the `read` scope makes the connection its client's user; any other key leaves it
  anonymous, and the consumers refuse anonymous connections.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from apiaccess.keys import api_key_authenticate
from apiaccess.models import Scope


class BrowserOriginValidator(OriginValidator):
    def __init__(self, application) -> None:
        super().__init__(application, settings.ALLOWED_HOSTS)

    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or self.validate_origin(parsed_origin)


def _raw_key(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
    keys = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("api_key")
    return keys[-1] if keys else None


@database_sync_to_async
def _user_of_key(raw_key: str):
    key = api_key_authenticate(raw_key)
    if key is None or not key.has_scope(Scope.READ):
        return AnonymousUser()
    return key.client.user


class ApiKeyAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        raw_key = _raw_key(scope)
        if raw_key is not None:
            scope = dict(scope, user=await _user_of_key(raw_key))
        return await super().__call__(scope, receive, send)
