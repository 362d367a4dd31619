"""`manage.py ledger_projector`: projects every ledger's log into the read models, in a process
of its own (distributed mode).

A writer process projects its own shard unless started with `--no-project`. Projection is
Python work (parsing events, building the rows' updates) that would otherwise share the
writer's interpreter lock, so under load it is taken out of the writer process: run the
writers with `--no-project` and this command once (the Procfile does). It reads each shard as a
RocksDB secondary instance, as the web processes do, and projects every registered ledger at
most every `BackgroundProjector.INTERVAL_SECONDS`, ledgers registered later included. SIGTERM or
SIGINT stops it after the round in progress; the cursor is in the database, so a restart
continues where it stopped.
"""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from ledger.models import Ledger
from ledger.runtime import BackgroundProjector, runtime


class Command(BaseCommand):
    help = "Project every registered ledger's event log into the read models (distributed mode)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--poll-ms", type=int, default=250,
                            help="how often to look for newly committed events")

    def handle(self, *args, poll_ms: int, **options) -> None:
        if settings.LEDGERFS_BUS != "redis":
            raise CommandError(
                "ledger_projector is for the distributed mode (LEDGERFS_BUS=redis); in embedded "
                "mode the web process projects"
            )
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        shards = runtime().shards
        projector = BackgroundProjector()
        projector.start(shards)
        self.stdout.write("projector up", ending="\n")
        self.stdout.flush()
        try:
            while not stopping.is_set():
                try:
                    close_old_connections()
                    codes = list(Ledger.objects.values_list("code", flat=True))
                except DatabaseError:
                    codes = []  # the projector retries too; the registry comes back with it
                served = set(shards.codes())
                for code in codes:
                    if code in served:
                        projector.notify(code, -1)
                stopping.wait(poll_ms / 1000)
        finally:
            projector.stop()
