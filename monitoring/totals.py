"""A ledger's outstanding liabilities and safeguarded customer funds, folded from its events.

Outstanding = minus the issuance account's `available` (DESIGN 3: what the ledger owes its
customers). Safeguarded customer funds = the `available`, `held` and `bonded` money of accounts
whose safeguarding class is `customer_funds` (promotional credit and fees are not customer
money). An account's class is learnt from its `account_opened` event, seen in passing or read
from the log when the account was opened before the monitor's cursor.
"""

from __future__ import annotations

import orjson

from ledger.core.state import ISSUANCE_DID, account_id_for
from ledger.eventstore.port import EventStore

CUSTOMER_FUNDS = "customer_funds"
CUSTOMER_BUCKETS = frozenset({"available", "held", "bonded"})
CLASS_CACHE_ACCOUNTS = 200_000


class Totals:
    def __init__(self, ledger: str, store: EventStore, *, outstanding_minor: int,
                 customer_funds_minor: int) -> None:
        self.ledger = ledger
        self.store = store
        self.issuance = account_id_for(ledger, ISSUANCE_DID)
        self.outstanding_minor = outstanding_minor
        self.customer_funds_minor = customer_funds_minor
        self._classes: dict[str, str] = {}

    def apply(self, bodies: list[dict]) -> None:
        for body in bodies:
            if body["type"] == "account_opened":
                self._remember(body["details"]["account"], body["details"]["safeguarding"])
            for leg in body["legs"]:
                account, bucket = leg["account"], leg["bucket"]
                if account == self.issuance:
                    if bucket == "available":
                        self.outstanding_minor -= leg["amount"]
                elif bucket in CUSTOMER_BUCKETS and self._class(account) == CUSTOMER_FUNDS:
                    self.customer_funds_minor += leg["amount"]

    def as_json(self, last_seq: int) -> dict:
        return {"ledger": self.ledger, "seq": last_seq,
                "outstanding_minor": self.outstanding_minor,
                "customer_funds_minor": self.customer_funds_minor}

    def _class(self, account: str) -> str:
        known = self._classes.get(account)
        if known is None:
            seqs = self.store.account_seqs(account, -1, None, 1)
            event = self.store.get(seqs[0]) if seqs else None
            details = orjson.loads(event.body)["details"] if event is not None else {}
            known = self._remember(account, details.get("safeguarding", "n/a"))
        return known

    def _remember(self, account: str, safeguarding: str) -> str:
        if len(self._classes) >= CLASS_CACHE_ACCOUNTS:
            self._classes.clear()
        self._classes[account] = safeguarding
        return safeguarding
