"""`manage.py ledger_writer --ledger CODE`: the writer process of one ledger shard.

Distributed mode: opens the shard read-write (creating it, with its genesis events and its
registry row, if it is new), takes commands from the Redis bus, publishes every durable group on
the ledger's event stream, and projects the log into the read models. One process per shard;
RocksDB's lock refuses a second one on the same shard. SIGTERM or SIGINT stops it after the
requests already taken are durable and answered.
"""

from __future__ import annotations

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError

from config.cpus import place_storage_threads, place_writer
from ledger.group_feed import GroupFeed
from ledger.models import Ledger
from ledger.runtime import BackgroundProjector, shards_root
from ledger.shards import ShardRegistry, valid_ledger_code
from ledger.stream import StreamPublisher
from ledger.transport.redis_bus import RedisBusServer
from ledger.transport.redis_stream import RedisEventStream

DATABASE_WAIT_SECONDS = 30.0
STREAM_FEED_MAX_EVENTS = 50_000
"""Events the stream publisher's feed holds: it publishes within a group or two unless the
stream is unreachable, and then it reads the store when the stream is back."""


class Command(BaseCommand):
    help = "Run the writer of one ledger shard (distributed mode: Redis bus and event stream)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ledger", required=True, help="ledger code, e.g. EUR")
        parser.add_argument("--scale", type=int, default=2,
                            help="minor-unit digits, used only when the ledger is new")
        parser.add_argument("--no-project", action="store_true",
                            help="leave projection into the read models to another process")

    def handle(self, *args, ledger: str, scale: int, no_project: bool, **options) -> None:
        if not valid_ledger_code(ledger):
            raise CommandError(f"invalid ledger code {ledger!r}")
        if not settings.REDIS_URL:
            raise CommandError("REDIS_URL is not set: the writer process needs the Redis bus")
        # Before any thread starts, so the bus, replier, stream and projector threads follow.
        place_writer()
        self._register(ledger, scale)

        wired = WiredWriter(ledger, settings.REDIS_URL, project=not no_project)
        place_storage_threads()  # RocksDB started them when the shard opened
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: wired.server.stop())
        self.stdout.write(
            f"ledger {ledger}: writer up at seq {wired.shard.writer.last_seq}, "
            f"shard {wired.shard.store.path}", ending="\n",
        )
        self.stdout.flush()
        try:
            wired.server.serve()
        finally:
            wired.close()
        if wired.server.writer_failed:
            raise CommandError(f"ledger {ledger}: the writer stopped (see the log above)")

    def _register(self, code: str, scale: int) -> None:
        """The ledger's registry row, created if missing; waits for a database that is
        still starting (processes of one Procfile start together)."""
        deadline = time.monotonic() + DATABASE_WAIT_SECONDS
        while True:
            try:
                Ledger.objects.get_or_create(code=code, defaults={"scale": scale})
                return
            except OperationalError as exc:
                if time.monotonic() > deadline:
                    raise CommandError(f"database unreachable: {exc}") from None
                time.sleep(0.5)


class WiredWriter:
    """What one writer process runs, wired together: the shard's writer, its Redis bus server,
    the stream publisher and (unless `project` is false) the projector. The publisher and the
    projector each take the writer's durable groups from memory, from a feed of their own
    (ledger/group_feed.py). `server.serve()` runs it; `close()` stops the rest."""

    def __init__(self, ledger: str, redis_url: str, *, project: bool = True) -> None:
        listeners = []
        self.projector = BackgroundProjector() if project else None
        self.stream_feed = GroupFeed(STREAM_FEED_MAX_EVENTS)
        feeds = [self.stream_feed]
        if self.projector is not None:
            feeds.append(self.projector.feed)
        self.registry = ShardRegistry(
            shards_root(), on_commit=lambda code, seq: [notify(code, seq) for notify in listeners],
            on_durable=lambda code, events, seq: [feed.add(code, events, seq) for feed in feeds],
        )
        self.shard = self.registry.create(ledger)
        self.stream = RedisEventStream(redis_url)
        self.publisher = StreamPublisher(
            self.stream, self.shard.store, feed=self.stream_feed).start()
        listeners.append(lambda code, seq: self.publisher.notify(seq))
        if self.projector is not None:
            self.projector.start(self.registry)
            listeners.append(self.projector.notify)
            self.projector.notify(ledger, self.shard.writer.last_seq)  # catch up after downtime
        self.server = RedisBusServer(redis_url, self.shard.writer)

    def close(self) -> None:
        self.publisher.stop()
        if self.projector is not None:
            self.projector.stop()
        self.registry.close()
        self.stream.close()
