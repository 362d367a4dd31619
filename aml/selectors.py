"""AML reads: the check record of a transaction, and alerts for the dashboard."""

from __future__ import annotations

from aml.models import Alert, AmlCheck
from aml.services import alert_json


def aml_check_get(*, event_id: str) -> dict | None:
    """The AML check of a transaction as a JSON-ready document (the FUSE view's
    `/docs/<tx id>/aml_check.json`), or None if the event was not screened (yet)."""
    check = AmlCheck.objects.filter(pk=event_id).first()
    if check is None:
        return None
    alerts = Alert.objects.filter(event_id=event_id).order_by("id")
    return {
        "event_id": check.event_id, "ledger": check.ledger, "seq": check.seq,
        "type": check.event_type, "ts": check.ts_ns, "amount": check.amount,
        "payer": check.payer or None, "payee": check.payee or None,
        "outcome": check.outcome, "rules": check.results,
        "thresholds_version": check.thresholds_version,
        "checked_at": check.checked_at.isoformat(),
        "alerts": [{"id": a.pk, "rule": a.rule, "account": a.account or None,
                    "status": a.status} for a in alerts],
    }


def alerts_recent(*, limit: int = 50) -> list[dict]:
    """The newest alerts, open and investigating ones first."""
    active = list(Alert.objects.exclude(status=Alert.Status.CLOSED)[:limit])
    closed = list(Alert.objects.filter(status=Alert.Status.CLOSED)[:max(0, limit - len(active))])
    return [alert_json(alert) for alert in active + closed]
