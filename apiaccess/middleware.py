"""Turns any non-JSON error response under /api/ into the JSON error shape.

The frameworks answer their own errors in the shape already; this catches the rest: Django's
404 for an unknown URL, 405 for a wrong method, the 400 of a bad Host header, and the 500 page
of an exception raised outside a view. Responses that already carry JSON pass untouched, and so
do the HTML pages DRF's browsable API renders on purpose for a browser.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from apiaccess.errors import error_response

API_PATH_PREFIX = "/api/"


def _reshape(request, response):
    if (
        response.status_code < 400
        or not request.path.startswith(API_PATH_PREFIX)
        or response.get("Content-Type", "").startswith("application/json")
        or hasattr(response, "accepted_renderer")
    ):
        return response
    reshaped = error_response(response.status_code)
    if response.has_header("Allow"):
        reshaped["Allow"] = response["Allow"]
    return reshaped


class ApiErrorMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return _reshape(request, self.get_response(request))

    async def _acall(self, request):
        return _reshape(request, await self.get_response(request))
