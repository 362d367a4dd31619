"""AML services: screen a ledger's committed events, record checks and alerts, work alerts.

`LedgerScreening` adapts the pure `aml.core.screening.Screening` to one ledger: thresholds and
watch list from the database (picked up within a second of an edit), account opening times from
the event store, and windows warmed up from the log when the monitor (re)starts, so a restart
does not forget the last hour's payments. `checks_record` must run inside the monitor's
transaction; `alert_update` is the one way an alert changes, with the acting user.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import orjson
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from aml.core.screening import NS_PER_SECOND, Check, Screening, Thresholds
from aml.models import Alert, AlertAction, AmlCheck, AmlRules, WatchedDid
from ledger.eventstore.port import EventStore

log = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
"""How often a screening looks for edited thresholds or watch list."""
WARM_UP_MAX_EVENTS = 200_000
"""At most this many events before the cursor are replayed into the windows on start."""
OPENED_CACHE_ACCOUNTS = 100_000


class AmlError(Exception):
    """Root of the AML services' exceptions; `code` is stable for API clients."""

    code = "aml_error"


class AlertStatusInvalid(AmlError):
    code = "alert_status_invalid"


def rules_get(*, ledger: str) -> AmlRules:
    """The ledger's rules, created with the default thresholds on first use."""
    rules, _ = AmlRules.objects.get_or_create(ledger=ledger)
    return rules


def thresholds_of(rules: AmlRules) -> Thresholds:
    return Thresholds(
        large_transfer_minor=rules.large_transfer_minor,
        velocity_count=rules.velocity_count,
        velocity_amount_minor=rules.velocity_amount_minor,
        velocity_window_seconds=rules.velocity_window_seconds,
        structuring_margin_percent=rules.structuring_margin_percent,
        structuring_count=rules.structuring_count,
        structuring_window_seconds=rules.structuring_window_seconds,
        new_account_age_seconds=rules.new_account_age_seconds,
        new_account_inflow_minor=rules.new_account_inflow_minor,
        version=rules.version,
    )


@transaction.atomic
def rules_save(*, rules: AmlRules, user) -> AmlRules:
    """Save edited thresholds as a new version (monitors pick it up within a second)."""
    saved = AmlRules.objects.select_for_update().filter(pk=rules.pk).first() if rules.pk else None
    rules.version = saved.version + 1 if saved is not None else 1
    rules.updated_by = user
    rules.save()
    return rules


def watchlist_dids() -> list[str]:
    return list(WatchedDid.objects.filter(active=True).values_list("did", flat=True))


class LedgerScreening:
    """The screening of one ledger's events, configured from the database."""

    def __init__(self, ledger: str, store: EventStore) -> None:
        self.ledger = ledger
        self.store = store
        self._opened_at = lru_cache(maxsize=OPENED_CACHE_ACCOUNTS)(self._opened_at_from_log)
        rules = rules_get(ledger=ledger)
        self.screening = Screening(
            ledger, thresholds_of(rules), watchlist_dids(), opened_at=self._opened_at
        )
        self._stamp = self._configuration_stamp()
        self._refreshed = time.monotonic()
        self._last_ts = 0

    def warm_up(self, cursor: int) -> int:
        """Replay the events before the cursor that the windows still need (their checks are
        discarded: they were recorded before). Returns how many were replayed."""
        last = self.store.get(cursor) if cursor >= 0 else None
        if last is None:
            return 0
        ts = orjson.loads(last.body)["ts"]
        window_ns = self.screening.thresholds.longest_window_seconds * NS_PER_SECOND
        start = max(self.store.seq_at_time(ts - window_ns), cursor - WARM_UP_MAX_EVENTS)
        replayed = 0
        for event in self.store.read(start, cursor - start):
            self.screening.check(orjson.loads(event.body))
            replayed += 1
        return replayed

    def check(self, bodies: list[dict]) -> list[Check]:
        """The checks of these events (in seq order, following those checked before)."""
        self._refresh()
        checks = [check for body in bodies if (check := self.screening.check(body)) is not None]
        if bodies:
            ts = bodies[-1]["ts"]
            if ts - self._last_ts > 60 * NS_PER_SECOND:
                self.screening.forget_before(ts)
                self._last_ts = ts
        return checks

    def _refresh(self) -> None:
        if time.monotonic() - self._refreshed < REFRESH_SECONDS:
            return
        self._refreshed = time.monotonic()
        stamp = self._configuration_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            self.screening.configure(thresholds_of(rules_get(ledger=self.ledger)),
                                     watchlist_dids())
            log.info("ledger %s: AML thresholds or watch list changed; now %s", self.ledger,
                     self.screening.thresholds)

    def _configuration_stamp(self) -> tuple:
        version = AmlRules.objects.filter(ledger=self.ledger).values_list("version", flat=True)
        watched = WatchedDid.objects.aggregate(count=Count("id"), changed=Max("updated_at"))
        return version.first(), watched["count"], watched["changed"]

    def _opened_at_from_log(self, account_id: str) -> int | None:
        seqs = self.store.account_seqs(account_id, -1, None, 1)
        event = self.store.get(seqs[0]) if seqs else None
        return orjson.loads(event.body)["ts"] if event is not None else None


def checks_record(*, checks: list[Check]) -> list[Alert]:
    """Store the checks and an open alert per hit; returns the alerts (with ids). Run it in
    the transaction that moves the monitor's cursor."""
    if not checks:
        return []
    _checks_insert(checks)
    alerts = [
        Alert(ledger=c.movement.ledger, rule=hit.rule.value, account=hit.account or "",
              event_id=c.movement.event_id, seq=c.movement.seq, amount=c.movement.amount,
              detail=hit.detail)
        for c in checks for hit in c.hits
    ]
    if alerts:
        Alert.objects.bulk_create(alerts)
        AlertAction.objects.bulk_create(
            [AlertAction(alert=alert, to_status=Alert.Status.OPEN) for alert in alerts]
        )
    return alerts


_CHECK_COLUMNS = ("event_id", "ledger", "seq", "event_type", "ts_ns", "amount", "payer",
                  "payee", "results", "outcome", "thresholds_version", "checked_at")


def _checks_insert(checks: list[Check]) -> None:
    """One row per check, written with COPY on PostgreSQL and `executemany` elsewhere: at
    thousands of checks a second, `bulk_create`'s per-field preparation cost several times the
    screening itself."""
    checked_at = timezone.now()
    results_json: dict[tuple, str] = {}  # a handful of distinct outcomes: encode each once
    rows = []
    for c in checks:
        key = tuple(c.results.items())
        results = results_json.get(key)
        if results is None:
            results = results_json[key] = orjson.dumps(c.results).decode()
        m = c.movement
        rows.append((m.event_id, m.ledger, m.seq, m.type, m.ts_ns, m.amount, m.payer or "",
                     m.payee or "", results, c.outcome, c.thresholds_version, checked_at))
    quote = connection.ops.quote_name
    table = quote(AmlCheck._meta.db_table)
    columns = ", ".join(quote(column) for column in _CHECK_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(_CHECK_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",
                               rows)


def alert_update(*, alert_id: int, user, status: str | None = None, note: str = "") -> Alert:
    """Change an alert's status and/or add a note, recorded with the acting user."""
    from monitoring.broadcast import alert_changed

    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert_id)
        status = alert.status if status is None else status
        if status not in Alert.Status.values:
            raise AlertStatusInvalid(
                f"status must be one of {', '.join(Alert.Status.values)}; got {status!r}"
            )
        note = note.strip()
        if status == alert.status and not note:
            return alert
        AlertAction.objects.create(
            alert=alert, user=user, from_status=alert.status, to_status=status, note=note
        )
        if status != alert.status:
            alert.status = status
            alert.save(update_fields=["status", "updated_at"])
        transaction.on_commit(lambda: alert_changed(alert_json(alert)))
    return alert


def alert_json(alert: Alert) -> dict:
    """An alert as the dashboard, the ops API and the `aml.alert` webhook show it."""
    return {
        "id": alert.pk, "ledger": alert.ledger, "rule": alert.rule, "status": alert.status,
        "account": alert.account or None, "event_id": alert.event_id, "seq": alert.seq,
        "amount": alert.amount, "detail": alert.detail,
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
    }
