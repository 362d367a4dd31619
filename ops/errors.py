"""DRF exceptions in the API error shape `{"code", "message", "details"?}`.

Statuses follow the ledger API: validation failures are 422 `request_invalid` with the field
errors in `details`; every other DRF error keeps its status and gets a stable code (DRF's own
code when it names something more specific, like `api_key_invalid` or `scope_required`).
"""

import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from apiaccess.errors import CODE_OF_STATUS, RETRYABLE_STATUSES, error_body

_GENERIC_DRF_CODES = frozenset({
    "error", "invalid", "not_authenticated", "authentication_failed", "permission_denied",
    "not_found", "method_not_allowed", "not_acceptable", "unsupported_media_type",
    "throttled", "parse_error",
})


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500, reshaped by apiaccess.middleware
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("request_invalid", "the request is invalid", {"fields": exc.detail})
        return Response(body, status=422)
    status = exc.status_code
    code = exc.get_codes() if isinstance(exc.detail, str) else None
    if not isinstance(code, str) or code in _GENERIC_DRF_CODES:
        code = CODE_OF_STATUS.get(status, "error")
    response = Response(error_body(code, str(exc.detail)), status=status)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        authenticator = context["request"].authenticators
        if authenticator:
            response["WWW-Authenticate"] = authenticator[0].authenticate_header(
                context["request"]
            )
    if status in RETRYABLE_STATUSES:
        response["Retry-After"] = str(math.ceil(getattr(exc, "wait", None) or 1))
    if isinstance(exc, exceptions.MethodNotAllowed):
        response["Allow"] = ", ".join(context["view"].allowed_methods)
    return response
