"""`manage.py ledger_writers`: a writer process for every registered ledger, on this machine.

Distributed mode. Runs `manage.py ledger_writer --ledger CODE` as a child process for each
ledger in the registry, and starts one for each ledger registered later (`POST
/api/v1/ledgers`, the admin) within `--poll-ms`; the web process answers the creation once that
writer serves, so a ledger created through the API takes commands at once. `--ledger CODE`
(repeatable) also runs the writers of these ledgers, registering them with `--scale` if they
are new. A writer that exits is started again after a pause that doubles from 1 s up to 30 s.
SIGTERM or SIGINT stops every writer (each answers the requests it has taken) and then this
process; the writers get SIGTERM too if this process dies.

Still one writer process per shard; every shard lives under this machine's
LEDGERFS_DATA_DIR. To spread shards over machines, run `ledger_writer --ledger CODE` for each
shard on the machine that holds it instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from ledger.models import Ledger
from ledger.shards import valid_ledger_code

log = logging.getLogger(__name__)

FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 30.0
STABLE_SECONDS = 60.0
"""A writer up this long is healthy again: its next restart pauses `FIRST_PAUSE_SECONDS`."""
STOP_WAIT_SECONDS = 20.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the supervisor dies, so a killed
    supervisor leaves no writer behind to hold its shard's lock."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WriterChild:
    """One ledger's writer process, started again (after a growing pause) when it exits."""

    def __init__(self, code: str, command: list[str], output) -> None:
        self.code = code
        self.command = command
        self.output = output
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.next_start = 0.0
        self.pause = FIRST_PAUSE_SECONDS

    def tick(self, now: float) -> None:
        if self.process is not None:
            returncode = self.process.poll()
            if returncode is None:
                if now - self.started_at >= STABLE_SECONDS:
                    self.pause = FIRST_PAUSE_SECONDS
                return
            log.warning("writer of ledger %s exited with %s; starting it again in %.0f s",
                        self.code, returncode, self.pause)
            self.process = None
            self.next_start = now + self.pause
            self.pause = min(self.pause * 2, MAX_PAUSE_SECONDS)
        if now >= self.next_start:
            self.process = subprocess.Popen(
                self.command, preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self.started_at = now
            self.output.write(f"ledger {self.code}: writer started (pid {self.process.pid})")
            self.output.flush()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, deadline: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("writer of ledger %s did not stop in time; killing it", self.code)
            self.process.kill()
            self.process.wait()


class Command(BaseCommand):
    help = ("Run a writer process (`ledger_writer`) for every registered ledger, including "
            "ledgers registered later (distributed mode, one machine).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ledger", action="append", default=[],
                            help="also run this ledger's writer, registering it if it is new "
                                 "(repeatable)")
        parser.add_argument("--scale", type=int, default=2,
                            help="minor-unit digits of the --ledger ledgers that are new")
        parser.add_argument("--poll-ms", type=int, default=250,
                            help="how often to look for newly registered ledgers")
        parser.add_argument("--no-project", action="store_true",
                            help="the writers leave projection to `manage.py ledger_projector`")

    def handle(
        self, *args, ledger: list[str], scale: int, poll_ms: int, no_project: bool, **options
    ) -> None:
        for code in ledger:
            if not valid_ledger_code(code):
                raise CommandError(f"invalid ledger code {code!r}")
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set: the writer processes need the Redis bus")
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "ledger_writer"]
        if no_project:
            manage.append("--no-project")
        children = {
            code: WriterChild(code, [*manage, "--ledger", code, "--scale", str(scale)],
                              self.stdout)
            for code in ledger
        }
        database_down = False
        try:
            while not stopping.is_set():
                try:
                    registered = list(Ledger.objects.values_list("code", flat=True))
                    database_down = False
                except DatabaseError as exc:
                    if not database_down:
                        log.warning("ledger registry unreachable (%s); retrying", exc)
                    database_down = True
                    registered = []
                    connection.close()
                for code in registered:
                    if code not in children and valid_ledger_code(code):
                        children[code] = WriterChild(code, [*manage, "--ledger", code],
                                                     self.stdout)
                now = time.monotonic()
                for child in children.values():
                    child.tick(now)
                stopping.wait(poll_ms / 1000)
        finally:
            for child in children.values():
                child.terminate()
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            for child in children.values():
                child.wait(deadline)
