"""The event log: query by account, type, seq or time range with cursor pagination, or fetch
one event by id. Events are served as stored: canonical body fields plus `hash`."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from pydantic import AwareDatetime, Field

from apiaccess.auth import require_scope
from apiaccess.errors import ApiError
from ledger.api.access import account_read_check, ledger_read_check
from ledger.api.eventjson import stored_event_json
from ledger.api.execution import ledger_of_id, shard_get
from ledger.api.responses import with_errors
from ledger.api.schemas import EventOut, EventPageOut
from ledger.api.timestamps import datetime_to_ns
from ledger.core.chain import StoredEvent
from ledger.core.events import EventType, event_accounts
from ledger.eventstore.port import EventStore
from ledger.permissions import account_view_allowed, accounts_view_all

router = Router(tags=["events"])

MAX_PAGE_EVENTS = 1_000
MAX_SEQ = 2**63 - 2
SCAN_CHUNK = 500
MAX_SCANNED_EVENTS = 20_000
"""A filtered query stops after this many events per request and returns its cursor, so one
request stays short however rare the matches are."""


class EventQuery(Schema):
    ledger: str | None = Field(None, description="Defaults to the ledger of `account`.")
    account: str | None = Field(None, description="Only events touching this account.")
    type: EventType | None = None
    after_seq: int = Field(-1, ge=-1, le=MAX_SEQ,
                           description="Cursor: only events with a larger seq.")
    since: AwareDatetime | None = Field(None, description="Only events at or after this time.")
    until: AwareDatetime | None = Field(None, description="Only events before this time.")
    limit: int = Field(100, ge=1, le=MAX_PAGE_EVENTS)


def _scan(store: EventStore, account: str | None, after_seq: int,
          before_seq: int | None) -> Iterator[StoredEvent]:
    """Events after `after_seq` and before `before_seq`, in seq order, read in chunks."""
    while True:
        if account is not None:
            seqs = store.account_seqs(account, after_seq, before_seq, SCAN_CHUNK)
            chunk = [event for seq in seqs if (event := store.get(seq)) is not None]
            exhausted = len(seqs) < SCAN_CHUNK
        else:
            chunk = list(store.read(after_seq, SCAN_CHUNK))
            exhausted = len(chunk) < SCAN_CHUNK
            if before_seq is not None and chunk and chunk[-1].seq >= before_seq:
                chunk = [event for event in chunk if event.seq < before_seq]
                exhausted = True
        yield from chunk
        if exhausted or not chunk:
            return
        after_seq = chunk[-1].seq


@router.get("/events", response=with_errors({200: EventPageOut}, 404),
            auth=require_scope("read"), summary="Query the event log (cursor: after_seq)")
def event_list(request: HttpRequest, query: Query[EventQuery]):
    ledger = query.ledger or ledger_of_id(query.account)
    if ledger is None:
        raise ApiError(422, "ledger_required", "give ledger, or an account id")
    if query.account is not None:
        account_read_check(request, query.account)
    else:
        ledger_read_check(request)
    store = shard_get(ledger).store
    after_seq = query.after_seq
    before_seq = None
    if query.since is not None:
        after_seq = max(after_seq, store.seq_at_time(datetime_to_ns(query.since) - 1))
    if query.until is not None:
        before_seq = store.seq_at_time(datetime_to_ns(query.until) - 1) + 1
    wanted = query.type.value if query.type is not None else None
    events = []
    cursor = after_seq
    has_more = False
    for scanned, event in enumerate(_scan(store, query.account, after_seq, before_seq)):
        if len(events) == query.limit or scanned == MAX_SCANNED_EVENTS:
            has_more = True
            break
        cursor = event.seq
        if wanted is None or orjson.loads(event.body)["type"] == wanted:
            events.append(stored_event_json(event))
    payload = {"events": events, "next_after_seq": cursor, "has_more": has_more}
    return HttpResponse(orjson.dumps(payload), content_type="application/json")


@router.get("/events/{event_id}", response=with_errors({200: EventOut}, 404),
            auth=require_scope("read"), summary="One event by id")
def event_get(request: HttpRequest, event_id: str, ledger: str | None = None):
    ledger = ledger or ledger_of_id(event_id)
    store = shard_get(ledger).store if ledger else None
    seq = store.seq_of_event(event_id) if store is not None else None
    event = store.get(seq) if seq is not None else None
    if event is None:
        if not accounts_view_all(request.user):
            raise ApiError(403, "permission_denied", "you may not view this event")
        raise ApiError(404, "event_not_found", f"no event {event_id!r}")
    accounts = event_accounts(orjson.loads(event.body))
    if not (accounts_view_all(request.user)
            or any(account_view_allowed(request.user, a) for a in accounts)):
        raise ApiError(403, "permission_denied", "you may not view this event")
    return HttpResponse(orjson.dumps(stored_event_json(event)), content_type="application/json")
