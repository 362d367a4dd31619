"""Balance reads from the published balances (`redis_balances`) on a web worker's event loop.

Why: redis-py's client blocks, so the fast lane ran each balance read in the loop's executor: a
pool thread woke, took the GIL, sent the HMGET, waited on its socket and woke the loop back
through its self-pipe. Measured on the idle distributed stack with the web processes on one
core, a read cost the web 210 µs of CPU, the client's connection and Redis aside. Here the
HMGET goes out on an asyncio connection of the loop's own and hiredis parses the reply in
`data_received`, so a read wakes no other thread.

`LoopBalances.read` answers only what it can answer at once; on a miss (an account the hash
does not hold yet) or any trouble with Redis it returns None, and the caller takes the old
way (`FollowerStore.account_now`, which falls back to the shard). After a failure the
connection is dropped, and the next read opens a new one `retry_seconds` later.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import hiredis
from redis.connection import parse_url

from ledger.core.machine import unpack_snapshot
from ledger.eventstore.port import AccountSnapshot
from ledger.transport import keys
from ledger.transport.redis_balances import HEAD_FIELD

RETRY_SECONDS = 1.0
"""How long reads take the old way after the connection failed."""


class _Resp(asyncio.Protocol):
    """One pipelined RESP connection: replies resolve the waiting futures in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self._parser = hiredis.Reader()
        self._waiting: deque[asyncio.Future] = deque()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close()

    def close(self) -> None:
        """Drop the connection; the reads waiting on it fail, and so does any later call."""
        self.lost = True
        if self.transport is not None:
            self.transport.abort()
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("Redis connection lost"))

    def call(self, *args) -> asyncio.Future:
        if self.lost:
            raise ConnectionError("Redis connection lost")
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self.transport.write(hiredis.pack_command(args))
        return waiter


class LoopBalances:
    """Reads `(snapshot, head seq)` of an account from the balances hash, on the running loop."""

    def __init__(self, url: str, timeout_seconds: float = 1.0,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self._params = parse_url(url)
        self.timeout_seconds = timeout_seconds
        self.retry_seconds = retry_seconds
        self._connection: _Resp | None = None
        self._connecting: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry_at = 0.0

    async def read(self, ledger: str, account_id: str) -> tuple[AccountSnapshot, int] | None:
        if time.monotonic() < self._retry_at:
            return None
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.timeout_seconds, self._drop)
        try:
            connection = await self._connected(loop)
            snapshot, head = await connection.call(
                b"HMGET", keys.balances(ledger), account_id, HEAD_FIELD)
        except (OSError, ConnectionError, TypeError, ValueError):
            # Refused, lost, timed out (`_drop`) or an error reply (not a pair to unpack).
            self._drop()
            self._retry_at = time.monotonic() + self.retry_seconds
            return None
        finally:
            timer.cancel()
        if snapshot is None or head is None:
            return None
        return unpack_snapshot(snapshot), int(head)

    async def _connected(self, loop: asyncio.AbstractEventLoop) -> _Resp:
        connection = self._connection
        if connection is not None and not connection.lost and self._loop is loop:
            return connection
        if self._connecting is None or self._loop is not loop:
            self._loop = loop
            self._connecting = loop.create_task(self._connect(loop))
        return await asyncio.shield(self._connecting)

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Resp:
        params = self._params
        try:
            async with asyncio.timeout(self.timeout_seconds):
                if "path" in params:
                    _, connection = await loop.create_unix_connection(_Resp, params["path"])
                else:
                    _, connection = await loop.create_connection(
                        _Resp, params.get("host", "localhost"), params.get("port", 6379))
                if params.get("password"):
                    auth = [params["password"]]
                    if params.get("username"):
                        auth.insert(0, params["username"])
                    _checked(await connection.call(b"AUTH", *auth))
                if params.get("db"):
                    _checked(await connection.call(b"SELECT", params["db"]))
        finally:
            self._connecting = None
        self._connection = connection
        return connection

    def _drop(self) -> None:
        """Close the connection: its pending reads fail, and a reply that comes late can never
        be taken for another read's."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _checked(reply):
    if isinstance(reply, hiredis.ReplyError):
        raise ConnectionError(f"Redis refused the connection's set-up: {reply}")
    return reply
