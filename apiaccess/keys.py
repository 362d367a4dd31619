"""Issuing, checking and revoking API keys (the services of this app).

A key reads `lfs_<prefix>_<secret>`: the prefix (12 hex digits) is public and finds the stored
row, the secret (32 random bytes, base64url) is what makes the key unguessable. The store
keeps SHA-256 of the whole key: with 256 bits of entropy a fast hash is enough (no password
stretching is needed), and comparison is constant-time.

A key that authenticated is remembered in this process for `AUTH_CACHE_SECONDS`, so the hot
API paths need no database query; a key in steady use is renewed before it expires
(`api_key_renew`). Revoking through `api_key_revoke` forgets it here at once; other processes
(and keys revoked or users deactivated by other means) stop working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apiaccess.models import SCOPES, ApiClient, ApiKey

KEY_MARK = "lfs"
PREFIX_HEX_DIGITS = 12
SECRET_BYTES = 32
AUTH_CACHE_SECONDS = 5.0
AUTH_CACHE_MAX_KEYS = 10_000
AUTH_RENEW_AHEAD_SECONDS = 1.0

# SHA-256 of a key that authenticated -> (monotonic expiry, its ApiKey with client and user).
_authenticated: dict[str, tuple[float, ApiKey]] = {}


class ApiKeyError(ValueError):
    """Bad input to an API-key service (unknown scope, unknown user)."""


def key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_prefix(raw_key: str) -> str | None:
    """The prefix of a well-formed key, else None (never raises on any input)."""
    mark, _, rest = raw_key.partition("_")
    prefix, _, secret = rest.partition("_")
    if mark != KEY_MARK or len(prefix) != PREFIX_HEX_DIGITS or not secret:
        return None
    if any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def scopes_parse(text: str | list[str]) -> list[str]:
    """Scopes from "read,write" or a list; sorted, unique, each one known."""
    items = text.split(",") if isinstance(text, str) else list(text)
    scopes = sorted({item.strip() for item in items if item.strip()})
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise ApiKeyError(
            f"scopes must be a non-empty subset of {', '.join(sorted(SCOPES))}; got {text!r}"
        )
    return scopes


@transaction.atomic
def api_client_get_or_create(*, name: str, username: str | None = None) -> ApiClient:
    """The client called `name`, created on first use. Without `username` the client acts as
    its own service user `api-<name>` (no password, no admin access, no permissions)."""
    client = ApiClient.objects.filter(name=name).first()
    if client is not None:
        return client
    User = get_user_model()
    if username is not None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise ApiKeyError(f"no user named {username!r}")
    else:
        user, created = User.objects.get_or_create(username=f"api-{name}"[:150])
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
    return ApiClient.objects.create(name=name, user=user)


def api_key_issue(*, client: ApiClient, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key for `client`; returns the row and the key, which is never available again."""
    scopes = scopes_parse(scopes)
    while True:
        prefix = secrets.token_hex(PREFIX_HEX_DIGITS // 2)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    raw_key = f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey.objects.create(
        client=client, prefix=prefix, key_hash=key_hash(raw_key), scopes=scopes
    )
    return key, raw_key


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    _authenticated.pop(key.key_hash, None)


def api_key_remembered(raw_key: str) -> ApiKey | None:
    """The key `api_key_authenticate` would return, if this process remembers it; None when
    finding out would need the database (callers that must not query, such as
    `ledger.api.fastlane`, then leave the request to the full path)."""
    if key_prefix(raw_key) is None:
        return None
    return _remembered(key_hash(raw_key))


def _remembered(digest: str) -> ApiKey | None:
    cached = _authenticated.get(digest)
    return cached[1] if cached is not None and cached[0] > time.monotonic() else None


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` (with its client and user loaded), else None."""
    prefix = key_prefix(raw_key)
    if prefix is None:
        return None
    digest = key_hash(raw_key)
    remembered = _remembered(digest)
    if remembered is not None:
        return remembered
    return _look_up(prefix, digest)


def api_key_renewal_due(key: ApiKey) -> bool:
    """Whether the remembered `key` expires within `AUTH_RENEW_AHEAD_SECONDS`. A caller that
    serves from memory only (`ledger.api.fastlane`) renews it then (`api_key_renew`): once
    expired, the key's next request takes the full path, and in a web process under load
    that is a batch parsed and checked by Django, or a balance read queued behind one."""
    cached = _authenticated.get(key.key_hash)
    return cached is not None and cached[0] - time.monotonic() < AUTH_RENEW_AHEAD_SECONDS


def api_key_renew(key: ApiKey) -> None:
    """Look the key up in the database again and remember what is found for another
    `AUTH_CACHE_SECONDS`; a key revoked or whose user was deactivated is forgotten."""
    _look_up(key.prefix, key.key_hash)


def _look_up(prefix: str, digest: str) -> ApiKey | None:
    key = (
        ApiKey.objects.select_related("client__user")
        .filter(prefix=prefix, revoked_at__isnull=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, digest) or \
            not key.client.user.is_active:
        _authenticated.pop(digest, None)
        return None
    if len(_authenticated) >= AUTH_CACHE_MAX_KEYS:
        _authenticated.clear()
    _authenticated[digest] = (time.monotonic() + AUTH_CACHE_SECONDS, key)
    return key


def api_key_cache_clear() -> None:
    """Forget every remembered key (tests, and after bulk changes to keys or users)."""
    _authenticated.clear()
