"""Dashboard reads: per-ledger totals and latest checkpoint, and recent AML alerts."""

from __future__ import annotations

from aml.selectors import alerts_recent
from attestation.models import Checkpoint
from ledger.models import Ledger
from monitoring.models import MonitorState
from monitoring.monitor import checkpoint_json


def dashboard_state(*, alerts: bool) -> dict:
    """What the dashboard shows before its sockets take over (JSON-ready)."""
    states = {state.ledger: state for state in MonitorState.objects.all()}
    codes = sorted({*states, *Ledger.objects.values_list("code", flat=True)})
    scales = dict(Ledger.objects.values_list("code", "scale"))
    ledgers = []
    for code in codes:
        state = states.get(code)
        checkpoint = Checkpoint.objects.filter(ledger=code).order_by("-height").first()
        ledgers.append({
            "code": code, "scale": scales.get(code, 0),
            "totals": {
                "ledger": code, "seq": state.last_seq,
                "outstanding_minor": state.outstanding_minor,
                "customer_funds_minor": state.customer_funds_minor,
            } if state is not None else None,
            "checkpoint": checkpoint_json(checkpoint) if checkpoint is not None else None,
        })
    return {"ledgers": ledgers, "alerts": alerts_recent() if alerts else None}
