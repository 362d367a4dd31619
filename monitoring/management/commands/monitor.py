"""`manage.py monitor`: the relay and monitor of every ledger (distributed mode).

Follows the writers' Redis event stream and the shards (RocksDB secondary instances): relays
committed events to the channel layer for `/ws/events/`, screens them for AML, queues webhook
deliveries (sent by the Celery workers) and keeps the dashboard totals. Run one per
deployment. SIGTERM or SIGINT stops it after the batch in progress is committed.
"""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ledger.runtime import runtime
from ledger.transport.redis_stream import RedisEventStream
from monitoring.runtime import Supervisor


class Command(BaseCommand):
    help = "Relay committed events to WebSockets, screen them for AML, queue webhooks."

    def handle(self, *args, **options) -> None:
        if settings.LEDGERFS_BUS != "redis":
            raise CommandError(
                "the monitor runs inside the web process in embedded mode; this command is "
                "for the distributed mode (DATABASE_URL and REDIS_URL set)"
            )
        stream = RedisEventStream(settings.REDIS_URL)
        supervisor = Supervisor(stream, runtime().shards)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: supervisor.request_stop())
        self.stdout.write("monitor up", ending="\n")
        self.stdout.flush()
        try:
            supervisor.run()
        finally:
            supervisor.stop()
            stream.close()
