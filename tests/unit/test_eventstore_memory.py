"""The event-store contract run against `MemoryEventStore`."""

from pathlib import Path

from ledger.eventstore.memory import MemoryEventStore
from ledger.eventstore.port import EventStore
from tests.unit.eventstore_contract import LEDGER, EventStoreContract


class TestMemoryEventStore(EventStoreContract):
    def make_store(self, tmp_path: Path) -> EventStore:
        return MemoryEventStore(LEDGER)

    def reopen(self, store: EventStore, tmp_path: Path) -> EventStore:
        # Its memory is its disk: a restart finds the same store and loads from its copies.
        return store
