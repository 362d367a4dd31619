"""API-key authentication for Django REST framework (the ops API).

`Authorization: Bearer <key>` authenticates as the key's client user, like the ledger API. The
ops API is for operators, so it needs the key's `admin` scope; without a header DRF falls
through to session authentication (the browsable API in a logged-in browser).
"""

from rest_framework import authentication, exceptions

from apiaccess.keys import api_key_authenticate
from apiaccess.models import Scope

OPS_SCOPE = Scope.ADMIN


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("send 'Authorization: Bearer <key>'",
                                                  code="api_key_invalid")
        try:
            raw_key = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("the API key is unknown or revoked",
                                                  code="api_key_invalid") from None
        key = api_key_authenticate(raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed("the API key is unknown or revoked",
                                                  code="api_key_invalid")
        if not key.has_scope(OPS_SCOPE):
            raise exceptions.PermissionDenied(f"the ops API needs the {OPS_SCOPE} scope",
                                              code="scope_required")
        return key.client.user, key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="ledgerfs"'
