"""The one error shape of every API: `{"code", "message", "details"?}` with a stable code.

Clients branch on `code`, never on `message`. Views raise `ApiError`; `install_ninja_handlers`
maps everything else the ledger API can raise (validation, authentication, oversized bodies,
unexpected bugs) to the same shape, `ops.errors` does it for DRF, and `middleware` catches
what neither framework sees (unknown URLs, wrong methods, Django's own 400/500 pages).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse

log = logging.getLogger(__name__)

CODE_OF_STATUS = {
    400: "request_malformed",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "request_invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
"""The code of an error that has no more specific one, by HTTP status."""

RETRYABLE_STATUSES = frozenset({429, 503})


class ApiError(Exception):
    """An expected refusal: HTTP status, stable code, human message, optional details."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return body


def error_response(
    status: int, code: str | None = None, message: str | None = None,
    details: dict[str, Any] | None = None,
) -> HttpResponse:
    code = code or CODE_OF_STATUS.get(status, "error")
    message = message or code.replace("_", " ")
    response = HttpResponse(
        orjson.dumps(error_body(code, message, details), default=str),
        status=status, content_type="application/json",
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="ledgerfs"'
    if status in RETRYABLE_STATUSES:
        response["Retry-After"] = "1"
    return response


def api_error_response(exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def install_ninja_handlers(api) -> None:
    """Make a NinjaAPI answer every failure with the error shape."""
    from ninja.errors import AuthenticationError, HttpError, ValidationError

    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return api_error_response(exc)

    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")),
             "type": str(error.get("type", ""))}
            for error in exc.errors
        ]
        return error_response(422, "request_invalid", "the request does not match the schema",
                              {"errors": errors})

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc.__cause__, RequestDataTooBig):
            return error_response(413, "payload_too_large", "the request body is too large")
        if isinstance(exc, AuthenticationError):
            return error_response(401, "authentication_required",
                                  "send an API key: 'Authorization: Bearer <key>'")
        if exc.status_code == 400:
            return error_response(400, "request_malformed", "the request body is not valid JSON")
        return error_response(exc.status_code, message=str(exc))

    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response(404, "not_found", "no such resource")

    def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return error_response(403, "permission_denied", "you may not do this")

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        if isinstance(exc, RequestDataTooBig):
            return error_response(413, "payload_too_large", "the request body is too large")
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; it has been logged")

    api.add_exception_handler(ApiError, on_api_error)
    api.add_exception_handler(ValidationError, on_validation_error)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(PermissionDenied, on_permission_denied)
    api.add_exception_handler(Exception, on_unexpected)
