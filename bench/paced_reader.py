"""Balance reads at a fixed rate, from a process of their own: read latency under write load.

Why a schedule: until the twelfth session one client thread read balances back to back beside
the batch clients. That measured how much reading costs the writes rather than how fast a read
is answered: about 1,300 reads/s at about 250 µs of CPU each (client, web worker and Redis)
took a third of the core the web workers and the clients share, and the stack wrote 10-15%
fewer transfers/s than with this reader. It also sampled mostly the quick moments: a read held
up for 10 ms was one sample, where a steady stream of readers would have met that delay many
times. Here each read is due at a fixed time and its latency counts from then; a read due while
the others are still waiting goes out at once on another connection (reads from many clients
do not queue behind each other), so a slow moment shows as often as it occurs.

Why a process: a paced reader thread in the clients' process fell behind its schedule waiting
for that process's interpreter lock (at 500 reads/s, starts late by 18.8 ms at the median and
265 ms at p95 while the calls themselves took 0.64 and 6.5 ms).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time

DEFAULT_RATE = 200
"""Reads per second: a busy operator console's worth, and a few percent of a core to serve."""

START_TIMEOUT_SECONDS = 30
IDLE_REUSE_SECONDS = 2.0
"""A connection idle longer than this is closed, not reused: uvicorn closes idle keep-alive
connections after 5 s, and a read sent on one that is closing fails."""


class _Connection:
    """One keep-alive HTTP/1.1 connection of the reader, asyncio streams underneath."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:]
                      if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)


async def _reads(port: int, key: str, ids: list[str], rate: float, seed: int, measuring,
                 stop) -> list[float]:
    """Reads due every 1/`rate` s until `stop`; the latencies (seconds from each read's due
    time) of those due while `measuring` was set. Raises on the first failed read."""
    rng = random.Random(seed)
    interval = 1.0 / rate
    idle: list[tuple[float, _Connection]] = []  # (idle since, connection), last used on top
    latencies: list[float] = []
    pending: set[asyncio.Task] = set()
    failures: list[Exception] = []

    async def read(due: float, account: str, counted: bool) -> None:
        try:
            await answered(due, account, counted)
        except Exception as exc:  # the first one ends the run, whatever it was
            failures.append(exc)

    async def answered(due: float, account: str, counted: bool) -> None:
        while idle and idle[0][0] < time.perf_counter() - IDLE_REUSE_SECONDS:
            idle.pop(0)[1].writer.close()
        connection = idle.pop()[1] if idle else await _Connection.open(port)
        request = (f"GET /api/v1/balances?account={account} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   f"Authorization: Bearer {key}\r\n\r\n").encode()
        status, body = await connection.get(request)
        if status != 200:
            raise RuntimeError(f"balance -> {status}: {body[:200]!r}")
        if counted:
            latencies.append(time.perf_counter() - due)
        idle.append((time.perf_counter(), connection))

    due = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(read(due, rng.choice(ids), measuring.is_set()))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if failures:
            raise failures[0]
        due += interval
    await asyncio.gather(*pending)
    if failures:
        raise failures[0]
    for _, connection in idle:
        connection.writer.close()
    return latencies


def _read_main(port: int, key: str, ids: list[str], rate: float, seed: int, measuring, stop,
               out) -> None:
    """The reader process: sends back its latencies, or the first failure's text."""
    out.send("ready")
    try:
        out.send(asyncio.run(_reads(port, key, ids, rate, seed, measuring, stop)))
    except (RuntimeError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
        out.send(f"balance reader: {exc!r}")


class PacedReader:
    """Starts the reader process at once (reading, not yet counting); `measure()` starts the
    counting, `finish()` stops it and returns the latencies."""

    def __init__(self, port: int, key: str, ids: list[str], rate: float = DEFAULT_RATE,
                 seed: int = 11) -> None:
        context = multiprocessing.get_context("spawn")
        self._measuring = context.Event()
        self._stop = context.Event()
        self._results, child_end = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_read_main, name="balance-reader", daemon=True,
            args=(port, key, ids, rate, seed, self._measuring, self._stop, child_end),
        )
        self.process.start()
        child_end.close()
        if not self._results.poll(START_TIMEOUT_SECONDS) or self._results.recv() != "ready":
            self.process.kill()
            raise RuntimeError("the balance reader process did not start")

    def measure(self) -> None:
        self._measuring.set()

    def finish(self) -> list[float]:
        """Stop reading; the latencies of the reads due since `measure()`. Raises when a read
        failed or the process died."""
        self._stop.set()
        try:
            answer = self._results.recv()
        except EOFError:
            answer = f"balance reader: the process died (exit code {self.process.exitcode})"
        self.process.join(10)
        if isinstance(answer, str):
            raise RuntimeError(answer)
        return answer
