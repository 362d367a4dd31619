"""The relay: one ledger's committed events to its channel-layer groups, as they come.

It starts at the end of the log and keeps no state: `/ws/events/` connections read anything
older, and anything the relay or the layer lost, from the log themselves (`monitoring.feeds`).
"""

from __future__ import annotations

import orjson

from ledger.api.eventjson import stored_event_json
from ledger.core.chain import StoredEvent
from ledger.core.events import event_accounts
from ledger.eventstore.port import EventStore
from ledger.stream import EventStream, StreamConsumer
from monitoring.broadcast import ALL_EVENTS_GROUP, events_group, group_send

MESSAGE_EVENTS = 500
"""Events per channel-layer message at most."""


def event_entry(event: StoredEvent, body: dict) -> list:
    """How an event travels in a group message: what consumers filter on, and its JSON (the
    API's shape: stored body plus `hash`)."""
    return [event.seq, body["type"], event_accounts(body),
            orjson.dumps(stored_event_json(event)).decode()]


class EventRelay:
    def __init__(self, stream: EventStream, store: EventStore, ledger: str) -> None:
        self.ledger = ledger
        self.group = events_group(ledger)
        self.consumer = StreamConsumer(stream, store, ledger, cursor=store.head()[0])

    def step(self, timeout_seconds: float) -> int:
        """Forward what was committed since the last step; returns how many events."""
        events = self.consumer.poll(timeout_seconds)
        for start in range(0, len(events), MESSAGE_EVENTS):
            entries = [event_entry(event, orjson.loads(event.body))
                       for event in events[start:start + MESSAGE_EVENTS]]
            message = {"type": "ledger.events", "ledger": self.ledger, "events": entries}
            group_send(self.group, message)
            group_send(ALL_EVENTS_GROUP, message)
        return len(events)
