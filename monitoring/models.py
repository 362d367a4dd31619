"""The monitor's state per ledger: how far it has processed the log, and the totals so far.

`MonitorState.last_seq` is the monitor's cursor on the committed-event stream. AML checks and
alerts, webhook deliveries and these totals are written in the same transaction that moves it,
so each event is processed exactly once whatever crashes in between. Totals are those of the
log up to `last_seq`: outstanding liabilities (minus the issuance account's available balance)
and safeguarded customer funds (available, held and bonded money of `customer_funds`
accounts), in the ledger's minor units.
"""

from django.db import models


class MonitorState(models.Model):
    ledger = models.CharField(max_length=12, primary_key=True)
    last_seq = models.BigIntegerField(default=-1)
    outstanding_minor = models.BigIntegerField(default=0)
    customer_funds_minor = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ledger"]
        verbose_name = "monitor state"

    def __str__(self) -> str:
        return f"{self.ledger} monitored up to seq {self.last_seq}"
