"""The monitor of one ledger: AML screening, the webhook outbox and the totals, exactly once.

It reads the committed-event stream from its own cursor (`MonitorState.last_seq`). For each
batch, in ONE transaction: the AML checks and alerts, a webhook delivery per matching event and
alert, the new totals, and the cursor. After the commit, new alerts and totals go to the
dashboard and the webhook runs of the subscriptions concerned are kicked. If anything fails,
the runtime drops this object and builds a new one from the stored state, so the in-memory
AML windows and totals never run ahead of what was committed.
"""

from __future__ import annotations

import time

import orjson
from django.db import transaction

from aml.services import LedgerScreening, alert_json, checks_record
from attestation.models import Checkpoint
from ledger.core.chain import StoredEvent
from ledger.eventstore.port import EventStore
from ledger.stream import EventStream, StreamConsumer
from monitoring import broadcast
from monitoring.models import MonitorState
from monitoring.totals import Totals
from webhooks.dispatch import deliveries_kick
from webhooks.services import ActiveSubscriptions, deliveries_create

BATCH_EVENTS = 2_000
"""Events per transaction at most."""
TOTALS_EVERY_SECONDS = 0.25
"""The dashboard gets the totals at most this often per ledger (and once things go quiet)."""
CHECKPOINT_EVERY_SECONDS = 1.0


class MonitorConflict(Exception):
    """Another monitor moved this ledger's cursor: two monitors run on one ledger."""


class LedgerMonitor:
    def __init__(self, stream: EventStream, store: EventStore, ledger: str) -> None:
        self.ledger = ledger
        self.state, _ = MonitorState.objects.get_or_create(ledger=ledger)
        self.consumer = StreamConsumer(stream, store, ledger, cursor=self.state.last_seq)
        self.screening = LedgerScreening(ledger, store)
        self.screening.warm_up(self.state.last_seq)
        self.totals = Totals(ledger, store, outstanding_minor=self.state.outstanding_minor,
                             customer_funds_minor=self.state.customer_funds_minor)
        self.subscriptions = ActiveSubscriptions()
        self._totals_sent: tuple | None = None
        self._totals_sent_at = 0.0
        self._checkpoint_height: int | None = None
        self._checkpoint_checked_at = 0.0

    def step(self, timeout_seconds: float) -> int:
        """Process what was committed since the last step; returns how many events."""
        events = self.consumer.poll(timeout_seconds)
        for start in range(0, len(events), BATCH_EVENTS):
            self._process(events[start:start + BATCH_EVENTS])
        self._send_totals(quiet=not events)
        self._send_checkpoint()
        return len(events)

    def _process(self, events: list[StoredEvent]) -> None:
        bodies = [orjson.loads(event.body) for event in events]
        checks = self.screening.check(bodies)
        self.totals.apply(bodies)
        with transaction.atomic():
            state = MonitorState.objects.select_for_update().get(pk=self.ledger)
            if state.last_seq != self.state.last_seq:
                raise MonitorConflict(
                    f"ledger {self.ledger}: the stored cursor is {state.last_seq}, this "
                    f"monitor's {self.state.last_seq}; is another monitor running?"
                )
            alerts = checks_record(checks=checks)
            subscriptions = deliveries_create(
                subscriptions=self.subscriptions.get(), ledger=self.ledger, events=events,
                bodies=bodies, alerts=alerts,
            )
            state.last_seq = events[-1].seq
            state.outstanding_minor = self.totals.outstanding_minor
            state.customer_funds_minor = self.totals.customer_funds_minor
            state.save()
        self.state = state
        for alert in alerts:
            broadcast.alert_changed(alert_json(alert))
        if subscriptions:
            deliveries_kick(sorted(subscriptions))

    def _send_totals(self, *, quiet: bool) -> None:
        now = time.monotonic()
        totals = self.totals.as_json(self.state.last_seq)
        current = (totals["seq"], totals["outstanding_minor"], totals["customer_funds_minor"])
        if current == self._totals_sent:
            return
        if not quiet and now - self._totals_sent_at < TOTALS_EVERY_SECONDS:
            return
        broadcast.totals_changed(totals)
        self._totals_sent, self._totals_sent_at = current, now

    def _send_checkpoint(self) -> None:
        now = time.monotonic()
        if now - self._checkpoint_checked_at < CHECKPOINT_EVERY_SECONDS:
            return
        self._checkpoint_checked_at = now
        latest = Checkpoint.objects.filter(ledger=self.ledger).order_by("-height").first()
        if latest is None or latest.height == self._checkpoint_height:
            return
        self._checkpoint_height = latest.height
        broadcast.checkpoint_changed(checkpoint_json(latest))


def checkpoint_json(checkpoint: Checkpoint) -> dict:
    return {"ledger": checkpoint.ledger, "height": checkpoint.height,
            "tree_size": checkpoint.tree_size, "root_hash": checkpoint.root_hash,
            "state_sum": checkpoint.state_sum, "created_at": checkpoint.created_at.isoformat()}
