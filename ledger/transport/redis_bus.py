"""The command bus over Redis: requests on one stream per ledger, replies on a list per client.

Client side (`RedisBus`, in web and worker processes): `submit` adds the request to the
ledger's bus stream in one atomic script that first checks the writer's heartbeat, so a ledger
whose writer is down fails at once with `WriterUnavailable` instead of waiting out the timeout.
One dispatcher thread per process pops replies from the process's reply list and resolves the
futures by request id.

Writer side (`RedisBusServer`, in `manage.py ledger_writer`): reads the stream through a
consumer group, hands each request to the shard's `Writer`, and once its group is durable sends
the reply. The entry is acknowledged (XACK) only after the reply is sent, so requests that a
killed writer had read but not answered are still pending in the group; the restarted writer
executes them again. That is safe because of idempotency: a command whose key has a recorded
outcome returns it (marked replayed) and changes nothing, so no command is ever applied twice.

Before the replies of a group, the server publishes the new state of every account the group
touched (`redis_balances`), so web processes read current balances without catching up.

Failure semantics for clients: `BusUnavailable` (Redis unreachable, or lost while waiting) and
`WriterUnavailable` (no live writer) are retryable errors; nothing is known to have been applied
and resending the same commands with the same idempotency keys is always safe. A timeout means
the same. The API answers all of them with 503 and a stable code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future

import redis

from ledger.bus import BusUnavailable, CommandBus, WriterUnavailable
from ledger.core.commands import Request
from ledger.core.machine import Event, Result, unpack_snapshot
from ledger.eventstore.port import AccountSnapshot
from ledger.transport import codec, keys
from ledger.transport.redis_balances import HEAD_FIELD, hset_command
from ledger.writer import SMALL_REQUEST_COMMANDS, WriteFailed, Writer, WriterError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 30.0
HEARTBEAT_TTL_MS = 3_000
"""A writer that has not refreshed its heartbeat for this long is taken for dead."""
HEARTBEAT_EVERY_SECONDS = 0.5
REPLY_TTL_SECONDS = 120
"""A reply list nobody pops (its process died) disappears after this long."""
READ_BLOCK_MS = 200
READ_COUNT = 512
REPLY_POP_COUNT = 256
RETRY_PAUSE_SECONDS = 0.2
MAX_BULK_REPLY_DEFERRAL_SECONDS = 0.05
"""How long the replier lets a bulk request's reply wait behind small ones at most, give or
take one batch (`RedisBusServer._reply_loop`)."""

# KEYS: heartbeat, bus stream. ARGV: request bytes. Atomic: the request is queued only if a
# writer is alive at that moment.
_SUBMIT_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', 'r', ARGV[1])
"""

CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def redis_client(url: str, *, timeout_seconds: float = 5.0) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
        health_check_interval=10,
    )


def head_reader(url: str):
    """`ledger -> last acknowledged seq` from the writers' head keys, for `FollowerStore`;
    raises when Redis is unreachable, returns None when the key is gone (Redis restarted)."""
    connection = redis_client(url, timeout_seconds=1.0)

    def read_head(ledger: str) -> int | None:
        value = connection.get(keys.head(ledger))
        return None if value is None else int(value)

    return read_head


def balances_reader(url: str):
    """`(ledger, account id) -> (snapshot, seq)` from the published balances, for
    `FollowerStore.account_now`; None when the account is not there (read the store then);
    raises when Redis is unreachable."""
    connection = redis_client(url, timeout_seconds=1.0)

    def read_current(ledger: str, account_id: str) -> tuple[AccountSnapshot, int] | None:
        snapshot, head = connection.hmget(keys.balances(ledger), [account_id, HEAD_FIELD])
        if snapshot is None or head is None:
            return None
        return unpack_snapshot(snapshot), int(head)

    return read_current


def writer_alive_reader(url: str):
    """`ledger -> whether its writer's heartbeat is current`, for `FollowerRegistry.create`;
    raises when Redis is unreachable."""
    connection = redis_client(url, timeout_seconds=1.0)

    def writer_alive(ledger: str) -> bool:
        return bool(connection.exists(keys.writer_heartbeat(ledger)))

    return writer_alive


class RedisBus(CommandBus):
    """Client side of the Redis bus; one per process (it owns a dispatcher thread)."""

    def __init__(self, url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.client_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.reply_key = keys.reply(self.client_id)
        self._redis = redis_client(url)
        self._submit_script = self._redis.register_script(_SUBMIT_SCRIPT)
        self._pending: dict[str, tuple[float, Future[list[Result]]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._dispatcher: threading.Thread | None = None

    def submit(
        self, ledger: str, request: Request | codec.EncodedCommands
    ) -> Future[list[Result]]:
        """As `CommandBus.submit`; the request may also be one encoded already."""
        self._ensure_dispatcher()
        request_id = uuid.uuid4().hex
        deadline = time.time() + self.timeout_seconds
        future = BusReply()
        with self._lock:
            self._pending[request_id] = (deadline, future)
        data = codec.request_encode(request_id, self.reply_key, int(deadline * 1000), request)
        try:
            entry = self._submit_script(
                keys=[keys.writer_heartbeat(ledger), keys.bus(ledger)], args=[data]
            )
        except CONNECTION_ERRORS as exc:
            self._forget(request_id)
            raise BusUnavailable(f"the command bus (Redis) is unreachable: {exc}") from None
        if entry is None:
            self._forget(request_id)
            raise WriterUnavailable(f"no writer is serving ledger {ledger} right now")
        return future

    def close(self) -> None:
        self._stopping.set()
        if self._dispatcher is not None:
            self._dispatcher.join(5)
        self._fail_all(BusUnavailable("the bus client was closed"))
        self._redis.close()

    # -- replies -------------------------------------------------------------------------------

    def _forget(self, request_id: str) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def _fail_all(self, error: Exception) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for _, future in pending.values():
            if not future.done():
                future.set_exception(error)

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is not None and self._dispatcher.is_alive():
            return
        with self._lock:
            if self._dispatcher is None or not self._dispatcher.is_alive():
                self._dispatcher = threading.Thread(
                    target=self._dispatch, name="ledger-bus-replies", daemon=True
                )
                self._dispatcher.start()

    def _dispatch(self) -> None:
        connection = redis_client(self.url, timeout_seconds=5.0)
        while not self._stopping.is_set():
            try:
                popped = connection.blpop([self.reply_key], timeout=1)
                if popped is not None:
                    batch = [popped[1]]
                    batch.extend(connection.lpop(self.reply_key, REPLY_POP_COUNT) or ())
                    for data in batch:
                        self._resolve(data)
            except CONNECTION_ERRORS as exc:
                # Replies sent meanwhile may be lost with the connection (or with Redis
                # itself): tell every waiting caller now rather than let them time out.
                self._fail_all(BusUnavailable(f"lost the command bus (Redis): {exc}"))
                self._stopping.wait(RETRY_PAUSE_SECONDS)
            except Exception:
                log.exception("bus reply dispatcher")
            self._expire()
        connection.close()

    def _resolve(self, data: bytes) -> None:
        request_id, _, rows, offset = codec.reply_header(data)
        with self._lock:
            entry = self._pending.pop(request_id, None)
        if entry is None or entry[1].done():
            return
        if isinstance(rows, str):
            entry[1].set_exception(WriteFailed(rows))
        else:
            entry[1].set_result((rows, data, offset))

    def _expire(self) -> None:
        now = time.time()
        with self._lock:
            expired = [rid for rid, (deadline, _) in self._pending.items() if deadline < now]
            futures = [self._pending.pop(rid)[1] for rid in expired]
        for future in futures:
            if not future.done():
                future.set_exception(TimeoutError("the ledger did not confirm in time"))


class BusReply(Future):
    """The future of a request sent over the bus. The dispatcher resolves it with the reply's
    rows and bytes, and the results are built by the thread that asks for them: a process's
    one dispatcher then never builds a thousand results while the reply to a lone payment
    waits behind them. A caller that needs no `Result` objects reads the reply as it came
    (`reply`): the fast lane writes its response from it."""

    def __init__(self) -> None:
        super().__init__()
        self._results: list[Result] | None = None

    def result(self, timeout: float | None = None) -> list[Result]:
        if self._results is None:
            self._results = codec.reply_results(*super().result(timeout))
        return self._results

    def reply(self, timeout: float | None = None) -> tuple[list, bytes, int]:
        """(the header's rows, the reply's bytes, the offset of the events' bytes in them),
        as `codec.reply_header` read them; raises as `result` does."""
        return super().result(timeout)


_NOTHING = object()
"""What the replier's queue held when it was looked at and found empty."""


class _Durable:
    """A durable group's events, queued for the replier before that group's replies."""

    __slots__ = ("events", "last_seq")

    def __init__(self, events: list[Event], last_seq: int) -> None:
        self.events = events
        self.last_seq = last_seq


class RedisBusServer:
    """Feeds one shard's `Writer` from its bus stream, publishes its balances and sends the
    replies (it listens to the writer's durable groups)."""

    def __init__(self, url: str, writer: Writer) -> None:
        self.url = url
        self.writer = writer
        self.ledger = writer.ledger
        self.stream_key = keys.bus(self.ledger)
        self._redis = redis_client(url)
        # Replies and durable groups, in the order the writer produced them.
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        # Only queues (it cannot fail): a group it missed would leave the balances stale.
        writer.durable_listeners.append(
            lambda events, last_seq: self._replies.put(_Durable(events, last_seq)))
        self._stopping = threading.Event()
        self._replier = threading.Thread(
            target=self._reply_loop, name=f"ledger-bus-replier-{self.ledger}", daemon=True
        )
        self._bulk = _BulkReplies(self)
        self._next_heartbeat = 0.0
        self.requests_handled = 0
        self.writer_failed = False

    def stop(self) -> None:
        self._stopping.set()

    def serve(self) -> None:
        """Run until `stop()`: read requests, feed the writer. Survives Redis restarts.
        On the way out it stops the writer (after its queue) and sends the last replies."""
        self._replier.start()
        # Entries a previous incarnation (or connection) read but never acknowledged come
        # first, read from the group's pending list by id; then new entries (">").
        cursor = "0"
        while not self._stopping.is_set():
            try:
                self._heartbeat()
                if cursor == "0":
                    self._ensure_group()
                entries = self._read(cursor)
                if cursor != ">":
                    if not entries:
                        cursor = ">"
                        continue
                    cursor = entries[-1][0]
                self._handle(entries)
            except CONNECTION_ERRORS as exc:
                log.warning("ledger %s: bus unreachable (%s); retrying", self.ledger, exc)
                cursor = "0"
                self._stopping.wait(RETRY_PAUSE_SECONDS)
            except redis.ResponseError as exc:
                # Redis lost its data (a restart without persistence, FLUSHALL): the next read
                # finds no group, or a read blocked at that moment is unblocked.
                if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                    raise
                cursor = "0"
        # Let the writer finish what it was handed, so those requests are answered too.
        self.writer.stop()
        self._replies.put(None)
        self._replier.join(10)
        with contextlib.suppress(*CONNECTION_ERRORS):
            self._redis.delete(keys.writer_heartbeat(self.ledger))
        self._redis.close()

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._redis.set(keys.writer_heartbeat(self.ledger), os.getpid(),
                            px=HEARTBEAT_TTL_MS)
            self._next_heartbeat = now + HEARTBEAT_EVERY_SECONDS

    def _ensure_group(self) -> None:
        try:
            self._redis.xgroup_create(self.stream_key, keys.BUS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, start_id: str) -> list:
        block = READ_BLOCK_MS if start_id == ">" else None
        answer = self._redis.xreadgroup(
            keys.BUS_GROUP, keys.BUS_CONSUMER, {self.stream_key: start_id},
            count=READ_COUNT, block=block,
        )
        return answer[0][1] if answer else []

    def _handle(self, entries: list) -> None:
        now_ms = time.time() * 1000
        expired = []
        # Shortest first: a lone payment read together with bulk batches reaches the writer
        # before their decoding, in time for its next group (entries read together have no
        # order a client could rely on).
        entries = sorted(entries, key=lambda entry: len(entry[1].get(b"r") or b""))
        for entry_id, fields in entries:
            data = fields.get(b"r")
            try:
                request_id, reply_to, deadline_ms, request = codec.request_decode(data or b"")
            except codec.CodecError:
                log.error("ledger %s: dropping malformed bus entry %s", self.ledger, entry_id)
                expired.append(entry_id)
                continue
            if deadline_ms < now_ms:
                # The client has given up and told its caller to retry: executing it now
                # would only race that retry (harmlessly, but for nothing).
                expired.append(entry_id)
                continue
            try:
                future = self.writer.submit(request)
            except WriterError:
                # The writer died: leave the entries pending for the next incarnation.
                self.writer_failed = True
                self.stop()
                return
            small = len(request.commands) <= SMALL_REQUEST_COMMANDS
            future.add_done_callback(
                lambda f, e=entry_id, r=request_id, t=reply_to, s=small:
                self._replies.put((e, r, t, f, s))
            )
        if expired:
            self._redis.xack(self.stream_key, keys.BUS_GROUP, *expired)
            self._redis.xdel(self.stream_key, *expired)

    # -- the replier thread --------------------------------------------------------------------

    def _reply_loop(self) -> None:
        """Send what the writer produced: each group's balances in the writer's order, and
        before any reply of that group; a small request's reply as soon as it is reached;
        the replies to bulk requests when nothing else is queued, one at a time on a
        connection of their own (`_BulkReplies`; and, once the oldest has waited
        `MAX_BULK_REPLY_DEFERRAL_SECONDS`, one after each batch, so a steady stream of small
        requests cannot hold them back for long).

        Why bulk replies wait: encoding one (a thousand results, their events' bytes) and
        handing Redis its half a megabyte takes milliseconds, and under load the replies of
        the group before stood in front of a lone payment's: measured inside the writer
        process, a small request's reply left 15 ms (median) after its group was durable.
        Nothing orders replies to different requests, so only the balances keep their order."""
        self._balances_reset()
        # Replies to bulk requests whose groups' balances are published: (since, reply).
        deferred: deque = deque()
        while True:
            if not deferred:
                self._bulk.settle()
                item = self._replies.get()
            else:
                try:
                    item = self._replies.get_nowait()
                except queue.Empty:
                    item = _NOTHING
            batch = []
            while item is not None and item is not _NOTHING:
                if type(item) is tuple and not item[4]:
                    deferred.append((time.monotonic(), item))
                else:
                    batch.append(item)  # a group's balances, or the reply to a small request
                    if type(item) is tuple:
                        break
                try:
                    item = self._replies.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._send(batch)
            if item is None:
                self._bulk.settle()
                if deferred:
                    self._send([reply for _, reply in deferred])
                self._bulk.close()
                return
            if deferred and (item is _NOTHING or time.monotonic() - deferred[0][0]
                             >= MAX_BULK_REPLY_DEFERRAL_SECONDS):
                self._bulk.send(deferred.popleft()[1])

    def _execute(self, packed: list[bytes], commands: list[tuple]) -> None:
        """Send the commands packed beforehand (`hset_command`) and then `commands`, all in one
        write, and read every answer; raises the first error Redis answers.

        One round trip, not one for the balances and another for the replies: Redis runs one
        connection's commands in the order sent, so the balances are in place before any
        reply is pushed, and a lone payment's reply no longer waits for the balances' answer
        (about 3 ms under load, measured inside the writer process)."""
        pool = self._redis.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_packed_command([*packed, *connection.pack_commands(commands)])
            for _ in range(len(packed) + len(commands)):
                connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _balances_reset(self) -> None:
        """Delete the published balances before publishing any: groups this writer decided
        before the server listened to it (or a previous incarnation's last ones) are not in
        them, so they may be stale (see redis_balances)."""
        while True:
            try:
                self._redis.delete(keys.balances(self.ledger))
                return
            except CONNECTION_ERRORS:
                if self._stopping.is_set():
                    return
                time.sleep(RETRY_PAUSE_SECONDS)

    def _encode(self, batch: list, last_seq: int) -> tuple[list[list[Event]], int, list, list]:
        """(the events of the batch's durable groups, the last one's seq, a (list, reply)
        pair per reply, the bus entries they answer); the replies say the writer's last seq
        was `last_seq`."""
        store = self.writer.store
        groups = []
        head = -1
        replies = []
        entry_ids = []
        for item in batch:
            if type(item) is _Durable:
                groups.append(item.events)
                head = item.last_seq
                continue
            entry_id, request_id, reply_to, future, _ = item
            entry_ids.append(entry_id)
            error = future.exception()
            if error is not None:
                # Nothing of this request was applied (the writer reloaded its state).
                data = codec.reply_encode_error(request_id, last_seq, str(error))
            else:
                data = codec.reply_encode(request_id, future.result(), store.get, last_seq)
            replies.append((reply_to, data))
        return groups, head, replies, entry_ids

    def _send(self, batch: list) -> None:
        last_seq = self.writer.last_seq
        groups, head, replies, entry_ids = self._encode(batch, last_seq)
        balances = hset_command(keys.balances(self.ledger), groups, head) if groups else None
        while True:
            # Balances and the head go first: a reader that learns of an acknowledged write by
            # any route finds the write in the balances, and the head at least that far (it
            # catches its secondary instance up to it).
            commands: list[tuple] = [("SET", keys.head(self.ledger), last_seq)]
            commands.extend(self._reply_commands(replies, entry_ids))
            try:
                self._execute([] if balances is None else [balances], commands)
                self.requests_handled += len(batch)
                return
            except CONNECTION_ERRORS:
                # Redis is down: keep the replies, their clients may still be waiting; but
                # a stopping writer does not wait for Redis forever.
                if self._stopping.is_set():
                    return
                time.sleep(RETRY_PAUSE_SECONDS)

    def _reply_commands(self, replies: list[tuple], entry_ids: list) -> list[tuple]:
        commands: list[tuple] = []
        for reply_to, data in replies:
            commands.append(("LPUSH", reply_to, data))
            commands.append(("EXPIRE", reply_to, REPLY_TTL_SECONDS))
        if entry_ids:
            commands.append(("XACK", self.stream_key, keys.BUS_GROUP, *entry_ids))
            commands.append(("XDEL", self.stream_key, *entry_ids))
        return commands


class _BulkReplies:
    """The replies to bulk requests, sent on a connection of their own without waiting for
    Redis's answers: those are read before the next one is sent, or when the replier has
    nothing else to do.

    Why: a bulk reply's round trip took the replier 6 ms (median, 16 at p95) under the
    distributed benchmark, and a lone payment's reply that arrived meanwhile waited for its
    end: measured inside the writer process, 42% of that reply's wait for the replier.

    What stays in order: a bulk reply is sent only after its group's balances were answered
    on the replier's own connection, and it sets no head (the balances' batch did, at least as
    far). When the connection fails, the replies whose answers were not all read are sent
    again the waiting way: a reply pushed twice is popped once by its client and then
    ignored, and acknowledging an entry twice changes nothing."""

    def __init__(self, server: RedisBusServer) -> None:
        self.server = server
        self._connection = None
        self._in_flight: tuple[tuple, int] | None = None  # (the reply's item, answers due)

    def send(self, item: tuple) -> None:
        self.settle()
        server = self.server
        _, _, replies, entry_ids = server._encode([item], server.writer.last_seq)
        commands = server._reply_commands(replies, entry_ids)
        try:
            if self._connection is None:
                self._connection = server._redis.connection_pool.get_connection()
            self._connection.send_packed_command(self._connection.pack_commands(commands))
        except CONNECTION_ERRORS:
            self._drop()
            server._send([item])
            return
        self._in_flight = (item, len(commands))

    def settle(self) -> None:
        """Read the answers of the reply in flight, if any; send it again on failure."""
        if self._in_flight is None:
            return
        item, due = self._in_flight
        self._in_flight = None
        try:
            for _ in range(due):
                self._connection.read_response()
        except CONNECTION_ERRORS:
            self._drop()
            self.server._send([item])
            return
        self.server.requests_handled += 1

    def close(self) -> None:
        self.settle()
        if self._connection is not None:
            self.server._redis.connection_pool.release(self._connection)
            self._connection = None

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
            self.server._redis.connection_pool.release(self._connection)
            self._connection = None
