"""The money movements AML screens, read from committed event bodies.

A movement is value passing between a customer account and someone else: `transfer` (payer to
payee), `release` of a hold (the captured part, holder to beneficiary), `mint` (money entering:
no payer) and `burn` (money leaving: no payee). Every other event type moves money inside one
account (holds, stakes), to the fee pool, or not at all, and is not screened.
"""

from __future__ import annotations

from dataclasses import dataclass

SCREENED_TYPES = frozenset({"transfer", "release", "mint", "burn"})


@dataclass(frozen=True, slots=True)
class Movement:
    event_id: str
    ledger: str
    seq: int
    ts_ns: int
    type: str
    payer: str | None
    """The account debited; None when money enters the ledger (mint)."""
    payee: str | None
    """The account credited; None when money leaves the ledger (burn)."""
    amount: int

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(a for a in (self.payer, self.payee) if a is not None)


def movement_of(body: dict) -> Movement | None:
    """The movement of an event body, or None for types AML does not screen."""
    kind = body["type"]
    if kind not in SCREENED_TYPES:
        return None
    legs = body["legs"]
    if kind == "release":
        amount = body["details"]["captured"]
        if amount <= 0:
            return None
        payer, payee = legs[0]["account"], body["details"]["beneficiary"]
    else:
        # Two legs, debit first: [payer -amount, payee +amount]; the issuance account is the
        # payer of a mint and the payee of a burn.
        payer, payee, amount = legs[0]["account"], legs[1]["account"], legs[1]["amount"]
        if kind == "mint":
            payer = None
        elif kind == "burn":
            payee = None
    return Movement(
        event_id=body["id"], ledger=body["ledger"], seq=body["seq"], ts_ns=body["ts"],
        type=kind, payer=payer, payee=payee, amount=amount,
    )
