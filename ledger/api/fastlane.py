"""The two hottest calls of the ledger API answered at the ASGI layer, ahead of Django:
`POST /api/v1/transfers` and `GET /api/v1/balances` (current balances).

Why: through Django a balance read cost a web process about 1.5 ms of CPU (the distributed
stack idle, one read after another): uvicorn's request, the hand-off to a request thread, the
middleware, ninja's authentication, query and response models, and the way back. The ledger's
own part, one Redis HMGET or one read of the writer's store, was about a tenth of it. Under the
write load every one of those hand-offs also waits for the GIL, and that wait is what a read's
latency was made of.

The lane runs the happy path of the ninja operations (`ledger.api.accounts.balance_get`,
`ledger.api.transfers.transfers_create`) with their own functions, and answers only what it can
answer without the database: an API key and a permission this process already remembers
(`api_key_remembered`, `account_view_remembered`). Everything else goes to Django unchanged,
which answers as it always did: a key not remembered yet (after which it is), a missing scope
or permission, a malformed request or batch, an as-of read, a batch that opens accounts (their
grants are written to the database), an unknown ledger, a disallowed Host. So every refusal
still comes from Django; the lane's only errors of its own are the ledger's 503s, made by the
same `ledger_failures`. Responses carry the headers Django's middleware adds
(`_middleware_headers`); a test sends each request both ways and compares the answers.

What could stall the event loop runs in its executor: in distributed mode sending a batch
(redis-py blocks), so an unresponsive Redis never stalls the loop; in either mode the parsing
and answering of a large batch. A distributed balance read's HMGET goes out on the loop's own
asyncio connection (`ledger.transport.redis_loop`), with a timeout, and only a miss or a Redis
failure takes the executor; in embedded mode a balance read and a small batch are a read of
the writer's store and a queue put, and run on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from urllib.parse import parse_qsl

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

from apiaccess.errors import ApiError, api_error_response, error_response
from apiaccess.keys import api_key_remembered, api_key_renew, api_key_renewal_due
from apiaccess.models import ApiKey
from ledger.api.accounts import balance_account, balance_body
from ledger.api.batch import (
    batch_commands,
    batch_ledger,
    batch_parse,
    batch_rows,
    reply_json,
    results_json,
)
from ledger.api.execution import idempotency_keys_normalize, ledger_failures
from ledger.api.reads import balance_now, balance_view
from ledger.core.commands import Request
from ledger.core.machine import Result
from ledger.eventstore.port import EventStore, EventStoreError
from ledger.permissions import (
    account_view_remembered,
    account_view_renew,
    account_view_renewal_due,
)
from ledger.runtime import runtime
from ledger.shards import UnknownLedger
from ledger.transport.redis_bus import BusReply
from ledger.transport.redis_loop import LoopBalances

log = logging.getLogger(__name__)

TRANSFERS_PATH = "/api/v1/transfers"
BALANCES_PATH = "/api/v1/balances"
INLINE_BODY_BYTES = 8 * 1024
"""Batches up to this size (about 50 transfers) are handled on the event loop."""
BALANCE_PARAMETERS = (frozenset({"account"}), frozenset({"ledger", "did"}))
"""The balance queries the lane answers: by account id, or by ledger and DID."""

_ROUTES = frozenset({("GET", BALANCES_PATH), ("POST", TRANSFERS_PATH)})

_HEADER_MIDDLEWARE = (SecurityMiddleware, XFrameOptionsMiddleware)
"""The middleware of `settings.MIDDLEWARE` that add headers to an API response."""


class FastLane:
    """ASGI middleware in front of Django's HTTP handler (`config.asgi`)."""

    def __init__(self, app) -> None:
        self.app = app
        self._headers: dict[bool, list[tuple[bytes, bytes]]] = {}
        self._balances: LoopBalances | None = None
        self._renewals = _Renewals()

    def _watch_key(self, key: ApiKey) -> None:
        self._renewals.watch(("key", key.key_hash), api_key_renewal_due, api_key_renew, key)

    @property
    def _loop_balances(self) -> LoopBalances | None:
        """In distributed mode, the published balances read on the event loop."""
        if self._balances is None and runtime().distributed:
            self._balances = LoopBalances(settings.REDIS_URL)
        return self._balances

    async def __call__(self, scope, receive, send) -> None:
        route = (scope.get("method"), scope.get("path")) if scope["type"] == "http" else None
        if route in _ROUTES and _lane_may_serve(scope):
            response = None
            try:
                if route == ("GET", BALANCES_PATH):
                    response = await self._balance(scope)
                elif route == ("POST", TRANSFERS_PATH):
                    response, receive = await self._transfers(scope, receive)
            except Exception:
                # As Django's handler would: logged, and the error shape without a trace.
                log.exception("unexpected error in %s %s", *route)
                response = error_response(500, "internal_error",
                                          "internal error; it has been logged")
            if response is not None:
                await self._send(scope, send, response)
                return
        await self.app(scope, receive, send)

    # -- the two calls: a response, or None for Django to answer --------------------------------

    async def _balance(self, scope) -> HttpResponse | None:
        parameters = _query(scope["query_string"])
        if parameters is None or frozenset(parameters) not in BALANCE_PARAMETERS:
            return None
        key = _key(scope, "read")
        if key is None:
            return None
        try:
            account_id, ledger = balance_account(
                parameters.get("account"), parameters.get("ledger"), parameters.get("did"))
            store = runtime().shards.get(ledger).store if ledger else None
        except (ApiError, UnknownLedger):
            return None
        user = key.client.user
        if store is None or account_view_remembered(user, account_id) is not True:
            return None
        self._watch_key(key)
        self._renewals.watch(("user", user.pk), account_view_renewal_due, account_view_renew,
                             user)
        balances = self._loop_balances
        current = await balances.read(ledger, account_id) if balances is not None else None
        try:
            state, seq = ((balance_view(current[0]), current[1]) if current is not None
                          else await _blocking(balance_now, store, account_id))
        except EventStoreError:
            return None
        if state is None:
            return None
        body = orjson.dumps(balance_body(account_id, ledger, state, seq))
        return HttpResponse(body, content_type="application/json; charset=utf-8")

    async def _transfers(self, scope, receive) -> tuple[HttpResponse | None, object]:
        """(the response or None, the `receive` to hand Django: it replays the body read)."""
        messages, body = await _read_body(receive)
        unanswered = None, _replaying(messages, receive)
        key = _key(scope, "write") if body is not None else None
        if key is None:
            return unanswered
        self._watch_key(key)
        # A large batch is parsed and answered in the executor: on the loop it would hold up
        # every other request of this process for its milliseconds of work.
        run = _off_loop if len(body) > INLINE_BODY_BYTES or runtime().distributed else _inline
        try:
            submitted = await run(_submitted, body, key)
            if submitted is None:
                return unanswered
            store, future = submitted
            with ledger_failures(store.ledger):
                await _settled(future, runtime().bus.timeout_seconds)
                payload = await run(_results_body, future, store)
        except ApiError as error:
            return api_error_response(error), receive
        return HttpResponse(payload, content_type="application/json"), receive

    # -- responses -------------------------------------------------------------------------------

    async def _send(self, scope, send, response: HttpResponse) -> None:
        secure = scope.get("scheme") == "https"
        if secure not in self._headers:
            self._headers[secure] = _middleware_headers(secure)
        body = response.content
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                   for name, value in response.items()]
        headers.append((b"content-length", str(len(body)).encode()))
        headers.extend(self._headers[secure])
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})
        await send({"type": "http.response.body", "body": body})


KEEP_WARM_SECONDS = 60.0
"""How long after the last request that used it an entry is still renewed before it expires."""
SWEEP_SECONDS = 0.5
"""How often the entries kept warm are looked at: well within their renewal window (the last
second before they expire)."""


class _Renewals:
    """Renews what the lane answers from (a remembered API key, a user's permissions) shortly
    before it expires, in Django's thread for synchronous code, one renewal per subject at a
    time; the requests go on being answered meanwhile.

    Why: an expired entry sent the next request to Django, which looked it up again while the
    lane's requests behind it took the full path too. Under the distributed benchmark's load,
    each web process did so every 5 s, reloading 10,000 grants, and a balance read that came
    meanwhile waited for it.

    An entry is renewed while it is in use (`watch`: every request answered from it), and
    for `KEEP_WARM_SECONDS` after its last request, by a sweep on the event loop: a worker that
    the kernel gave none of a client's connections for a few seconds found the client's grants
    expired, and its next read of theirs went to Django and reloaded them all (a read of 124 ms
    in `python -m bench http-distributed`)."""

    def __init__(self) -> None:
        self._running: dict[tuple, asyncio.Task] = {}
        self._watched: dict[tuple, tuple[float, Callable, Callable, tuple]] = {}
        self._sweeper: asyncio.Task | None = None

    def watch(self, subject: tuple, due: Callable[..., bool], renew: Callable, *args) -> None:
        """`subject`'s entry answered a request: renew it (`renew(*args)`) when `due(*args)`,
        now or at a sweep within `KEEP_WARM_SECONDS`."""
        self._watched[subject] = (time.monotonic(), due, renew, args)
        if due(*args):
            self.start(subject, renew, *args)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def start(self, subject: tuple, renew, *args) -> None:
        if subject not in self._running:
            self._running[subject] = asyncio.get_running_loop().create_task(
                self._renew(subject, renew, args))

    async def _sweep(self) -> None:
        while self._watched:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for subject, (used, due, renew, args) in list(self._watched.items()):
                if now - used > KEEP_WARM_SECONDS:
                    del self._watched[subject]
                elif due(*args):
                    self.start(subject, renew, *args)

    async def _renew(self, subject: tuple, renew, args: tuple) -> None:
        try:
            await sync_to_async(renew, thread_sensitive=True)(*args)
        except Exception:
            # What was remembered expires as it would have; Django looks it up then.
            log.exception("renewing %s failed", subject[0])
        finally:
            del self._running[subject]


def _lane_may_serve(scope) -> bool:
    """Whether Django would let this request through to a view at all: an allowed Host (what
    `HttpRequest.get_host` checks) and no HTTPS redirect due."""
    if settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https":
        return False
    hosts = _header_values(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else []
    hosts = hosts or _header_values(scope, b"host")
    if len(hosts) != 1:
        return False
    domain, _ = split_domain_port(hosts[0].decode("latin-1"))
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


def _header_values(scope, name: bytes) -> list[bytes]:
    return [value for header, value in scope["headers"] if header == name]


def _key(scope, needed: str) -> ApiKey | None:
    """The request's API key if this process remembers it and it has the scope `needed`."""
    values = _header_values(scope, b"authorization")
    if len(values) != 1:
        return None
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    key = api_key_remembered(token)
    return key if key is not None and key.has_scope(needed) else None


def _query(raw: bytes) -> dict[str, str] | None:
    """The query's parameters when each is given once, with a value; None otherwise."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    parameters = dict(pairs)
    if len(parameters) != len(pairs) or not all(parameters.values()):
        return None
    return parameters


async def _read_body(receive) -> tuple[list[dict], bytes | None]:
    """(the messages received, the body) — the body None when it exceeds Django's limit
    (Django answers that) or the client left."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    messages = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if limit is not None and size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replaying(messages: list[dict], receive):
    """A `receive` that gives `messages` again, then what `receive` gives."""
    pending = list(messages)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay


async def _inline(function, *args):
    return function(*args)


async def _off_loop(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def _blocking(function, *args):
    """`function(*args)`, in the executor when it may wait on Redis (distributed mode)."""
    return await (_off_loop if runtime().distributed else _inline)(function, *args)


def _submitted(body: bytes, key: ApiKey) -> tuple[EventStore, Future[list[Result]]] | None:
    """Sends the batch to its ledger's writer: (the ledger's store, the writer's future), or
    None when Django must answer (see the module docstring). Raises `ApiError` when the
    ledger cannot take it.

    In distributed mode the body goes to the bus as `batch_rows` reads it when it can: no
    `Command` is built in this process, only the bus request's bytes."""
    client = key.client.command_client
    encoded = batch_rows(body, client) if runtime().distributed else None
    try:
        if encoded is not None:
            ledger, request = encoded
        else:
            items, atomic, ledger = batch_parse(body)
            ledger = batch_ledger(items, ledger)
        store = runtime().shards.get(ledger).store
    except (ApiError, UnknownLedger):
        return None
    if encoded is None:
        commands = batch_commands(items, client)
        if any(command.type == "open_account" for command in commands):
            return None
        idempotency_keys_normalize(commands)
        request = Request(commands, atomic)
    with ledger_failures(ledger):
        return store, runtime().bus.submit(ledger, request)


async def _settled(future: Future, timeout: float) -> None:
    """Waits for a writer's future without a thread; raises `TimeoutError` after `timeout`."""
    loop = asyncio.get_running_loop()
    settled = loop.create_future()

    def wake(_: Future) -> None:
        loop.call_soon_threadsafe(lambda: settled.done() or settled.set_result(None))

    future.add_done_callback(wake)
    # Waiting on `settled`, not on the future itself: a timeout cancels only `settled`, while
    # the writer still resolves its future (a cancelled one would fail it).
    await asyncio.wait_for(settled, timeout)


def _results_body(future: Future[list[Result]], store: EventStore) -> bytes:
    if isinstance(future, BusReply):
        body = reply_json(*future.reply())
        if body is not None:
            return body
    return results_json(future.result(), store)


def _not_called(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only the middleware's process_response is used")


def _middleware_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers the response middleware of `settings.MIDDLEWARE` add to an API response,
    found by running them on an empty response."""

    class Probe(HttpRequest):
        def _get_scheme(self) -> str:
            return "https" if secure else "http"

    request = Probe()
    response = HttpResponse()
    before = set(response.headers)
    for middleware in _HEADER_MIDDLEWARE:
        if f"{middleware.__module__}.{middleware.__name__}" in settings.MIDDLEWARE:
            response = middleware(_not_called).process_response(request, response)
    return [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response.items() if name not in before]
