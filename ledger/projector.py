"""Projects committed events of a shard into the Django read models.

Each ledger has a `ProjectionCursor` (last applied seq). `project` reads the events after it
from the event store, brings the `Account` and `Hold` rows they touch up to date, and moves the
cursor, all in one database transaction: the tables always reflect exactly the events up to the
cursor, so a crash in the middle loses nothing and applies nothing twice. `rebuild` starts over
from seq 0.

Balances are not recomputed from the legs: the event store already keeps every account's state
after each event (its as-of index), so a batch writes each touched account's state as of the
batch's end, once, whatever the number of its events in the batch. That makes projection cost
grow with the accounts a batch touches rather than with the events, and it never reads the rows
it overwrites.

In the writer's own process the events come from memory when they can (`GroupFeed`): their
snapshots are the states to write, so a transfer costs neither a read from the store nor a JSON
parse.
"""

from __future__ import annotations

import orjson
import psycopg
from django.db import connection, models, transaction

from ledger._projection import configure, fold
from ledger.core.events import event_accounts
from ledger.core.machine import Event, unpack_snapshot
from ledger.core.state import STATUS_CODES, AccountStatus
from ledger.eventstore.port import AccountSnapshot, EventStore
from ledger.group_feed import FEED_MAX_EVENTS, GroupFeed
from ledger.models import BUCKET_FIELDS, Account, Hold, Ledger, ProjectionCursor

configure(event=Event)

BATCH_EVENTS = 20_000
"""Events per transaction at most when they are read back from the store: larger batches write
each busy account fewer times, but every event of one is parsed and held at once."""

FEED_BATCH_EVENTS = FEED_MAX_EVENTS
"""Events per transaction at most when they come from memory (`GroupFeed`): they are held
already and cost no parse, so a round takes all the feed has. A background round at 25,000
transfers/s holds more than `BATCH_EVENTS`, and a second transaction would write most of the
accounts again."""

_STATUS_OF_CODE = {
    STATUS_CODES[AccountStatus.open]: Account.Status.OPEN,
    STATUS_CODES[AccountStatus.frozen]: Account.Status.FROZEN,
    STATUS_CODES[AccountStatus.closed]: Account.Status.CLOSED,
}
_HOLD_STATUS = {
    "release": Hold.Status.RELEASED,
    "hold_cancelled": Hold.Status.CANCELLED,
    "hold_expired": Hold.Status.EXPIRED,
}
_ACCOUNT_UPDATE_FIELDS = ["status", *BUCKET_FIELDS, "last_seq"]
_HOLD_UPDATE_FIELDS = ["status", "captured", "resolved_seq"]


def project(
    ledger: Ledger, store: EventStore, *, limit: int = BATCH_EVENTS,
    feed: GroupFeed | None = None, until_seq: int | None = None,
) -> int:
    """Apply the events after the ledger's cursor, up to `FEED_BATCH_EVENTS` of them from `feed`
    when it holds them, else up to `limit` from the store, and none after `until_seq`; returns
    how many were applied."""
    feed_limit = FEED_BATCH_EVENTS
    with transaction.atomic():
        _commit_without_flush()
        cursor, _ = ProjectionCursor.objects.select_for_update().get_or_create(ledger=ledger)
        if until_seq is not None:
            wanted = until_seq - cursor.last_seq
            if wanted <= 0:
                return 0
            limit, feed_limit = min(limit, wanted), min(feed_limit, wanted)
        events = feed.take(ledger.code, cursor.last_seq, feed_limit) if feed is not None else []
        if events:
            batch = _Batch.of_events(ledger, store, events)
            last_seq, count = events[-1].seq, len(events)
        else:
            stored = list(store.read(cursor.last_seq, limit))
            if not stored:
                return 0
            batch = _Batch.of_bodies(ledger, store, [orjson.loads(e.body) for e in stored])
            last_seq, count = stored[-1].seq, len(stored)
        batch.apply()
        cursor.last_seq = last_seq
        cursor.save(update_fields=["last_seq", "updated_at"])
    return count


def _commit_without_flush() -> None:
    """Let this transaction's commit return before PostgreSQL flushes its WAL to disk.

    The read model is derived data: the event log is durable before any event reaches it, and
    rows and cursor commit together, so a crash can only lose the latest projected batches,
    which the next run projects again from the cursor. Waiting for that flush bought nothing
    but a disk wait per round in the writer's process."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def catch_up(
    ledger: Ledger, store: EventStore, feed: GroupFeed | None = None,
    until_seq: int | None = None,
) -> int:
    """Project until the cursor reaches `until_seq`, or the end of the log; returns the events
    applied."""
    total = 0
    while applied := project(ledger, store, feed=feed, until_seq=until_seq):
        total += applied
    return total


def rebuild(ledger: Ledger, store: EventStore) -> int:
    """Drop the ledger's read model and project it again from seq 0."""
    with transaction.atomic():
        Hold.objects.filter(ledger=ledger).delete()
        Account.objects.filter(ledger=ledger).delete()
        ProjectionCursor.objects.update_or_create(ledger=ledger, defaults={"last_seq": -1})
    return catch_up(ledger, store)


def _update_rows(model: type[models.Model], fields: list[str], rows: list[list]) -> None:
    """UPDATE `fields` of each row by primary key; each row is the field values, then the pk.

    On PostgreSQL, one statement joins the table with the rows passed as one array per column
    (`unnest`), so the rows cost no per-row statement or parameter handling in Python; this
    runs in the writer's process, where every millisecond of Python is taken from the writer.
    Elsewhere (SQLite), one prepared UPDATE run with executemany. Django's `bulk_update` builds
    one CASE/WHEN expression per field over the whole batch, which was slower than both.
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    pk = quote(meta.pk.column)
    columns = [meta.get_field(name).column for name in fields]
    if connection.vendor == "postgresql":
        types = [meta.get_field(name).db_type(connection) for name in fields]
        types.append(meta.pk.db_type(connection))
        names = [*(quote(column) for column in columns), pk]
        sql = (
            f"UPDATE {table} SET "
            + ", ".join(f"{name} = v.{name}" for name in names[:-1])
            + " FROM unnest(" + ", ".join(f"%s::{kind}[]" for kind in types) + ")"
            + f" AS v({', '.join(names)}) WHERE {table}.{pk} = v.{pk}"
        )
        # Each column goes as one array literal in a plain psycopg cursor (server-side
        # binding). Django's cursor would quote every element in Python (an eighth of the
        # projector's time), and psycopg binding a list still dumps element by element
        # (measured on 10,000 rows of 8 columns: 40 ms of CPU as lists, 6 ms as literals).
        connection.ensure_connection()
        literals = [_array_literal(column, kind in _INTEGER_TYPES)
                    for column, kind in zip(zip(*rows, strict=True), types, strict=True)]
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, literals)
        return
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})


def _array_literal(values: tuple, integers: bool) -> str:
    """A PostgreSQL array literal: integers as they are, anything else as a quoted string."""
    if integers:
        if None in values:
            return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
        return "{" + ",".join(map(str, values)) + "}"
    return "{" + ",".join(
        "NULL" if v is None else '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        for v in values
    ) + "}"


class _Batch:
    """What one batch of events changes: new accounts and holds, changed holds, and the final
    state of every account touched, written once each. Those states come from the events'
    own snapshots when they are at hand, else from the store's as-of index."""

    def __init__(self, ledger: Ledger, store: EventStore, bodies: list[dict]) -> None:
        self.ledger = ledger
        self.store = store
        hold_ids = {body["refs"]["hold_id"] for body in bodies if "hold_id" in body["refs"]}
        self.holds = Hold.objects.in_bulk(list(hold_ids))
        self.new_accounts: dict[str, Account] = {}
        self.new_holds: dict[str, Hold] = {}
        self.last_seq_of: dict[str, int] = {}  # account id -> its last event in the batch
        self.known: dict[str, tuple[int, bytes]] = {}  # account id -> (seq, packed snapshot)
        # Counted when the batch opens its first account: a COUNT over the ledger's accounts
        # costs PostgreSQL milliseconds, and most batches open none.
        self.next_position: int | None = None

    @classmethod
    def of_bodies(cls, ledger: Ledger, store: EventStore, bodies: list[dict]) -> _Batch:
        batch = cls(ledger, store, bodies)
        for body in bodies:
            batch._apply(body)
        return batch

    @classmethod
    def of_events(cls, ledger: Ledger, store: EventStore, events: list[Event]) -> _Batch:
        """From a writer's events: a transfer only moves its two accounts' states (its legs,
        which are its snapshots), so only the other events are decoded and applied.

        `fold` (ledger/_projection.c) records every snapshot and each transfer's last seq in
        one pass; the other events are applied afterwards, and `_apply` keeps the larger seq,
        so an account ends at its last event whichever kind came last."""
        known: dict[str, tuple[int, bytes]] = {}
        last_seq_of: dict[str, int] = {}
        bodies = [event.body for event in fold(events, known, last_seq_of)]
        batch = cls(ledger, store, bodies)
        batch.known, batch.last_seq_of = known, last_seq_of
        for body in bodies:
            batch._apply(body)
        return batch

    def apply(self) -> None:
        changed = []
        known = self.known
        missing = [(account_id, seq) for account_id, seq in self.last_seq_of.items()
                   if known.get(account_id, (None,))[0] != seq]
        fetched = dict(zip((account_id for account_id, _ in missing),
                           self.store.account_snapshots_at(missing), strict=True))
        for account_id, seq in self.last_seq_of.items():
            seen = known.get(account_id)
            snapshot = (unpack_snapshot(seen[1]) if seen is not None and seen[0] == seq
                        else fetched[account_id])
            state = self._state(account_id, seq, snapshot)
            account = self.new_accounts.get(account_id)
            if account is None:
                changed.append([*state, account_id])
            else:
                for field, value in zip(_ACCOUNT_UPDATE_FIELDS, state, strict=True):
                    setattr(account, field, value)
        Account.objects.bulk_create(self.new_accounts.values())
        _update_rows(Account, _ACCOUNT_UPDATE_FIELDS, changed)
        Hold.objects.bulk_create(self.new_holds.values())
        _update_rows(Hold, _HOLD_UPDATE_FIELDS, [
            [*(getattr(hold, field) for field in _HOLD_UPDATE_FIELDS), hold.pk]
            for hold in self.holds.values() if hold.pk not in self.new_holds
        ])

    @staticmethod
    def _state(account_id: str, seq: int, snapshot: AccountSnapshot | None) -> list:
        """The account's `_ACCOUNT_UPDATE_FIELDS` values right after event `seq`."""
        if snapshot is None:
            raise LookupError(f"no state of account {account_id} at seq {seq} in the event store")
        status, *balances = snapshot
        return [_STATUS_OF_CODE[status], *balances, seq]

    def _apply(self, body: dict) -> None:
        seq = body["seq"]
        etype = body["type"]
        details = body["details"]
        if etype == "account_opened":
            if self.next_position is None:
                self.next_position = Account.objects.filter(ledger=self.ledger).count()
            account = Account(
                id=details["account"], ledger=self.ledger, did=details["did"],
                kind=details["kind"], status=Account.Status.OPEN, tags=details["tags"],
                safeguarding=details["safeguarding"], position=self.next_position,
                opened_seq=seq, last_seq=seq,
            )
            self.next_position += 1
            self.new_accounts[account.id] = account
        if etype == "hold":
            legs = body["legs"]
            hold = Hold(
                id=body["refs"]["hold_id"], ledger=self.ledger,
                account_id=legs[0]["account"], beneficiary_id=details["beneficiary"],
                amount=legs[1]["amount"], expires_at_ns=details["expires_at"],
                status=Hold.Status.OPEN, created_seq=seq,
            )
            self.holds[hold.id] = self.new_holds[hold.id] = hold
        elif etype in _HOLD_STATUS:
            hold = self.holds[body["refs"]["hold_id"]]
            hold.status = _HOLD_STATUS[etype]
            hold.resolved_seq = seq
            hold.captured = details.get("captured", 0)
        last_seq_of = self.last_seq_of
        for account_id in event_accounts(body):
            if last_seq_of.get(account_id, -1) < seq:
                last_seq_of[account_id] = seq
