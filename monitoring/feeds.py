"""What one `/ws/events/` connection receives: its filters, its cursors, its permissions.

Query string (all optional):
- `ledger=EUR`: one ledger; default: every ledger, or the ledger of the accounts given;
- `account=acc_eur_…[,…]`: only events touching one of these accounts (of one ledger);
- `type=transfer[,mint…]`: only events of these types;
- `after_seq=N`: first the events after seq N, read from the log, then the live ones (one
  ledger only). Without it the feed starts at the end of the log.

Frames (JSON text): `{"type": "events", "ledger", "events": [...]}` with events as the ledger API
serves them (stored body plus `hash`); `{"type": "ready", "cursors": {ledger: seq}}` once the
backlog is sent; `{"type": "error", "code", "message"}` before a refusal closes the socket
(4400 bad filter, 4403 permission, 4404 unknown ledger, 1011 log unavailable).

Invariant, per ledger: events go out in increasing seq order, none twice, none missing among
those the filters and permissions let through. Every live batch is checked against the cursor
(the last seq considered); what lies between the cursor and the batch is read from the log
first, so a message lost by the relay or the channel layer costs latency, never an event.
Permissions: an event is sent only if the user may view one of the accounts it touches (as
`GET /api/v1/events/{id}`); object grants are re-checked within `GRANT_CACHE_SECONDS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

import orjson

from ledger.core.chain import StoredEvent
from ledger.core.events import EventType
from ledger.core.state import ledger_tag
from ledger.eventstore.port import EventStore
from ledger.permissions import account_view_allowed, accounts_view_all
from ledger.shards import UnknownLedger, valid_ledger_code
from monitoring.broadcast import ALL_EVENTS_GROUP, events_group
from monitoring.relay import event_entry

FRAME_EVENTS = 1_000
"""Events considered per backlog frame at most."""
EVENT_TYPES = frozenset(t.value for t in EventType)


class FeedRefused(Exception):
    """The subscription cannot be served; `close_code` is the WebSocket close code."""

    def __init__(self, close_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.code = code

    def frame(self) -> str:
        return orjson.dumps({"type": "error", "code": self.code, "message": str(self)}).decode()


@dataclass(frozen=True)
class FeedFilter:
    ledger: str | None
    accounts: frozenset[str]
    types: frozenset[str]
    after_seq: int | None


def _values(params: dict[str, list[str]], name: str) -> list[str]:
    return [item.strip() for value in params.get(name, ()) for item in value.split(",")
            if item.strip()]


def feed_filter_parse(query_string: bytes) -> FeedFilter:
    params = parse_qs(query_string.decode("latin-1"))
    ledgers = _values(params, "ledger")
    accounts = frozenset(_values(params, "account"))
    types = frozenset(_values(params, "type"))
    if len(ledgers) > 1:
        raise FeedRefused(4400, "ledger_invalid", "give at most one ledger")
    ledger = ledgers[0] if ledgers else None
    if ledger is not None and not valid_ledger_code(ledger):
        raise FeedRefused(4400, "ledger_invalid", f"{ledger!r} is not a ledger code")
    account_ledgers = {(ledger_tag(account) or "").upper() for account in accounts}
    if "" in account_ledgers or len(account_ledgers) > 1 or (
        ledger is not None and accounts and account_ledgers != {ledger}
    ):
        raise FeedRefused(4400, "account_invalid",
                          "accounts must be account ids of one ledger (the `ledger` given)")
    if accounts:
        ledger = account_ledgers.pop()
    unknown = sorted(types - EVENT_TYPES)
    if unknown:
        raise FeedRefused(4400, "type_invalid", f"unknown event types: {', '.join(unknown)}")
    after_seq = None
    if "after_seq" in params:
        try:
            after_seq = int(params["after_seq"][-1])
        except ValueError:
            after_seq = -2
        if after_seq < -1:
            raise FeedRefused(4400, "after_seq_invalid", "after_seq must be an integer >= -1")
        if ledger is None:
            raise FeedRefused(4400, "ledger_required", "after_seq needs a ledger (or account)")
    return FeedFilter(ledger, accounts, types, after_seq)


class FeedBroken(Exception):
    """The log does not (yet) hold events the stream says were committed."""


class Feed:
    def __init__(self, user, filters: FeedFilter, shards) -> None:
        self.user = user
        self.filters = filters
        self.shards = shards
        self.view_all = accounts_view_all(user)
        denied = [a for a in sorted(filters.accounts) if not account_view_allowed(user, a)]
        if denied:
            raise FeedRefused(4403, "permission_denied", f"you may not view {denied[0]}")
        if filters.ledger is not None:
            self._store(filters.ledger)
        self.cursors: dict[str, int] = {}
        self._backlog_until = -1

    @property
    def groups(self) -> list[str]:
        ledger = self.filters.ledger
        return [events_group(ledger)] if ledger is not None else [ALL_EVENTS_GROUP]

    def _store(self, ledger: str) -> EventStore:
        try:
            return self.shards.get(ledger).store
        except UnknownLedger:
            raise FeedRefused(4404, "ledger_not_found", f"no ledger {ledger}") from None

    def start(self) -> None:
        """Set the cursors; call once the connection belongs to its groups, so nothing
        committed from now on can pass unseen."""
        ledger = self.filters.ledger
        if ledger is None:
            for code in self.shards.codes():
                self.cursors[code] = self._store(code).head()[0]
            return
        head = self._store(ledger).head()[0]
        after_seq = self.filters.after_seq
        self.cursors[ledger] = head if after_seq is None else after_seq
        self._backlog_until = head

    def backlog_frame(self) -> str | None:
        """The next frame of the backlog (`after_seq` up to the head at start); None once it
        has all been sent."""
        ledger = self.filters.ledger
        while ledger is not None and self.cursors[ledger] < self._backlog_until:
            events, until = self._read(ledger, self.cursors[ledger], self._backlog_until)
            self.cursors[ledger] = until
            jsons = [entry[3] for entry in self._entries(events) if self._wanted(entry)]
            if jsons:
                return self._frame(ledger, jsons)
        return None

    def ready_frame(self) -> str:
        return orjson.dumps({"type": "ready", "cursors": self.cursors}).decode()

    def needs_io(self, message: dict) -> bool:
        """Whether `live_frames` may read the log or the permissions (so must run off the
        event loop)."""
        entries = message["events"]
        if not self.view_all:
            return True
        if not entries:
            return False
        cursor = self.cursors.get(message["ledger"], entries[0][0] - 1)
        # A hole before the message or inside it (the relay sends contiguous runs).
        return entries[0][0] > cursor + 1 or entries[-1][0] - entries[0][0] >= len(entries)

    def live_frames(self, message: dict) -> list[str]:
        """The frames for one relay message: the missing events from the log, then the new
        ones of the message, filtered."""
        ledger = message["ledger"]
        entries = message["events"]
        if not entries or (self.filters.ledger is not None and ledger != self.filters.ledger):
            return []
        cursor = self.cursors.get(ledger, entries[0][0] - 1)
        frames: list[str] = []
        jsons: list[str] = []
        for entry in entries:
            seq = entry[0]
            if seq <= cursor:
                continue
            if seq > cursor + 1:
                if jsons:
                    frames.append(self._frame(ledger, jsons))
                    jsons = []
                frames += self._gap(ledger, cursor, seq - 1)
            cursor = seq
            if self._wanted(entry):
                jsons.append(entry[3])
        if jsons:
            frames.append(self._frame(ledger, jsons))
        self.cursors[ledger] = cursor
        return frames

    def _gap(self, ledger: str, after: int, until: int) -> list[str]:
        store = self._store(ledger)
        if store.head()[0] < until and hasattr(store, "catch_up"):
            store.catch_up(until)
        if store.head()[0] < until:
            raise FeedBroken(f"ledger {ledger}: the log ends before seq {until}")
        frames = []
        while after < until:
            events, after = self._read(ledger, after, until)
            jsons = [entry[3] for entry in self._entries(events) if self._wanted(entry)]
            if jsons:
                frames.append(self._frame(ledger, jsons))
        return frames

    def _read(self, ledger: str, after: int, until: int) -> tuple[list[StoredEvent], int]:
        """Events after `after` up to `until` that may pass the account filter, at most a
        frame's worth, and the seq up to which they are complete."""
        store = self._store(ledger)
        limit = min(FRAME_EVENTS, until - after)
        if not self.filters.accounts:
            events = [e for e in store.read(after, limit) if e.seq <= until]
            if len(events) < limit:
                raise FeedBroken(f"ledger {ledger}: the log ends before seq {until}")
            return events, events[-1].seq
        complete_to = until
        seqs: set[int] = set()
        for account in self.filters.accounts:
            found = store.account_seqs(account, after, until + 1, limit)
            seqs.update(found)
            if len(found) == limit:
                complete_to = min(complete_to, found[-1])
        events = [store.get(seq) for seq in sorted(s for s in seqs if s <= complete_to)]
        return [e for e in events if e is not None], complete_to

    @staticmethod
    def _entries(events: Iterable[StoredEvent]) -> list[list]:
        return [event_entry(event, orjson.loads(event.body)) for event in events]

    def _wanted(self, entry: list) -> bool:
        _, event_type, accounts, _ = entry
        filters = self.filters
        if filters.types and event_type not in filters.types:
            return False
        if filters.accounts and filters.accounts.isdisjoint(accounts):
            return False
        return self.view_all or any(account_view_allowed(self.user, a) for a in accounts)

    @staticmethod
    def _frame(ledger: str, jsons: list[str]) -> str:
        return f'{{"type":"events","ledger":"{ledger}","events":[{",".join(jsons)}]}}'
