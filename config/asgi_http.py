"""Django's HTTP handling under ASGI, with the middleware chain built for sync code.

Every middleware in `settings.MIDDLEWARE` can run sync and every view is sync. Django's own
ASGI handler nevertheless builds the chain in async mode, and in async mode a `MiddlewareMixin`
middleware runs each of its hooks through `sync_to_async`: about fifteen hand-offs between the
event loop and a worker thread per request. Each hand-off waits for the GIL, and while a batch
of transfers holds it that wait is what a request's latency is made of (measured with
`python -m bench http`: a balance read took 4 ms idle and 115 ms at the p95 under the batch
load). Built sync, a request enters sync code once, in the per-request thread Django uses for
sync views, and leaves it once.

That per-request thread is taken from a pool of idle ones. Django's handler starts a new thread
for every request (a fresh `ThreadSensitiveContext`), and the event loop waits for it to start:
under the distributed batch load, py-spy found a web worker's event loop in `Thread.start` in a
third of its samples.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

IDLE_THREADS_MAX = 16
"""Request threads kept for reuse; beyond that, a finished request's thread ends. Each kept
thread keeps its database connection for up to CONN_MAX_AGE, so this bounds a web worker's
idle connections (PostgreSQL allows 100 by default, for every process of the stack)."""


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        # Only touched from the event loop's thread: no lock.
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}")
        # One thread per request at a time, as Django's own handler has it (a request's
        # database connection and signals stay in its thread), but not a new one each time.
        executor = self._idle.pop() if self._idle else ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < IDLE_THREADS_MAX:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # thread_sensitive: this request's thread (see __call__), where it also runs the
        # request signals (database connections are per thread).
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
