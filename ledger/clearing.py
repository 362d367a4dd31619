"""Value across ledgers: cross-ledger payments through clearing accounts, and netting reports.

Transfers never leave their ledger (shard). Each ledger holds one clearing account per
counterparty ledger (kind `clearing`, DID `did:ledgerfs:clearing:<COUNTERPARTY>`). A payment
from a payer in ledger A to a payee in ledger B is two transfers, each durable in its own shard,
both carrying the payment's `netting_batch_id` (seed 000, CLD-US-009):

    A: payer       -> clearing[B]   (A owes nothing more: the value now sits with B's side)
    B: clearing[A] -> payee         (paid out of the liquidity B keeps for A)

The two legs are not one transaction (the shards have separate writers and logs); the payment
is made safe by idempotency instead. Each leg has a key derived from the payment id, so a
payment retried after any failure never applies a leg twice, and a credit leg that B rejects
(payee frozen, no liquidity left) is compensated by a refund leg in A under the same batch.
Only a ledger pair of the same asset is allowed: no FX here.

Netting invariant, checked by `netting_report`: for each batch, the clearing positions (the
net movement of the clearing accounts) sum to zero across the ledgers, and bilaterally
clearing[B]@A + clearing[A]@B = 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import orjson

from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.machine import Result
from ledger.core.state import account_id_for
from ledger.runtime import runtime

CLIENT = "clearing"
"""The idempotency scope of the clearing legs."""


def clearing_did(counterparty: str) -> str:
    return f"did:ledgerfs:clearing:{counterparty}"


def clearing_account_id(ledger: str, counterparty: str) -> str:
    return account_id_for(ledger, clearing_did(counterparty))


class ClearingError(Exception):
    """Root of the clearing services' exceptions (misuse, not a ledger's answer)."""


def clearing_accounts_open(*, ledgers: list[str]) -> dict[tuple[str, str], str]:
    """Open the clearing account of every ordered pair of these ledgers (idempotent).
    Returns {(ledger, counterparty): account id}."""
    opened = {}
    for ledger in ledgers:
        commands = [
            Command("open_account", f"open-clearing:{other}", client=CLIENT,
                    did=clearing_did(other), kind="clearing", tags=["clearing"])
            for other in ledgers if other != ledger
        ]
        results = runtime().bus.execute(ledger, Request(commands))
        for command, result in zip(commands, results, strict=True):
            if result.code not in (ResultCode.ok, ResultCode.account_already_exists):
                raise ClearingError(f"cannot open {command.did} on {ledger}: {result.code.name}")
            opened[(ledger, command.did.rsplit(":", 1)[1])] = account_id_for(ledger, command.did)
    return opened


@dataclass
class CrossLedgerPayment:
    payment_id: str
    netting_batch_id: str
    debit: Result
    credit: Result | None = None
    refund: Result | None = None

    @property
    def ok(self) -> bool:
        return self.debit.ok and self.credit is not None and self.credit.ok

    @property
    def code(self) -> ResultCode:
        """ok, or the code that stopped the payment (the debit's, else the credit's)."""
        if not self.debit.ok:
            return self.debit.code
        return self.credit.code if self.credit is not None else ResultCode.ok


def payment_cross_ledger(
    *, payment_id: str, netting_batch_id: str, source_ledger: str, payer: str,
    destination_ledger: str, payee: str, amount: int,
) -> CrossLedgerPayment:
    """Pay `amount` from `payer` (in `source_ledger`) to `payee` (in `destination_ledger`).
    Safe to call again with the same arguments after any failure: nothing applies twice."""
    if source_ledger == destination_ledger:
        raise ClearingError("a payment inside one ledger is a plain transfer")
    bus = runtime().bus

    def leg(ledger: str, name: str, account: str, to: str) -> Result:
        command = Command(
            "transfer", f"{payment_id}:{name}", client=CLIENT, account=account, to=to,
            amount=amount, netting_batch_id=netting_batch_id,
            metadata={"payment_id": payment_id, "leg": name},
        )
        [result] = bus.execute(ledger, Request([command]))
        return result

    outcome = CrossLedgerPayment(payment_id, netting_batch_id, leg(
        source_ledger, "debit", payer, clearing_account_id(source_ledger, destination_ledger)
    ))
    if not outcome.debit.ok:
        return outcome
    outcome.credit = leg(
        destination_ledger, "credit", clearing_account_id(destination_ledger, source_ledger),
        payee,
    )
    if not outcome.credit.ok:
        outcome.refund = leg(
            source_ledger, "refund", clearing_account_id(source_ledger, destination_ledger),
            payer,
        )
    return outcome


@dataclass
class BatchNetting:
    """One netting batch: the net movement of every clearing account it touched."""

    netting_batch_id: str
    positions: dict[tuple[str, str], int] = field(default_factory=dict)
    """(ledger, counterparty) -> net amount into that clearing account (negative: paid out)."""
    transfers: int = 0

    @property
    def net(self) -> int:
        return sum(self.positions.values())

    @property
    def bilateral(self) -> dict[tuple[str, str], int]:
        """{(A, B) with A < B: clearing[B]@A + clearing[A]@B}; all zero when settled."""
        pairs: dict[tuple[str, str], int] = defaultdict(int)
        for (ledger, counterparty), amount in self.positions.items():
            pairs[tuple(sorted((ledger, counterparty)))] += amount
        return dict(pairs)

    @property
    def balanced(self) -> bool:
        return self.net == 0 and not any(self.bilateral.values())

    def as_dict(self) -> dict:
        return {
            "netting_batch_id": self.netting_batch_id, "transfers": self.transfers,
            "balanced": self.balanced, "net": self.net,
            "positions": [{"ledger": ledger, "counterparty": counterparty, "net": amount}
                          for (ledger, counterparty), amount in sorted(self.positions.items())],
        }


def netting_report(*, ledgers: list[str], netting_batch_id: str | None = None
                   ) -> list[BatchNetting]:
    """Clearing positions per netting batch, read from the ledgers' logs (every acknowledged
    transfer counts, projected or not). Only the clearing accounts' own events are read,
    through the log's per-account index."""
    batches: dict[str, BatchNetting] = {}
    for ledger in ledgers:
        store = runtime().shards.get(ledger).store
        for counterparty in ledgers:
            if counterparty == ledger:
                continue
            account = clearing_account_id(ledger, counterparty)
            for seq in store.account_seqs(account):
                body = orjson.loads(store.get(seq).body)
                batch_id = body["refs"].get("netting_batch_id")
                if batch_id is None or (netting_batch_id and batch_id != netting_batch_id):
                    continue
                batch = batches.setdefault(batch_id, BatchNetting(batch_id))
                amount = sum(leg["amount"] for leg in body["legs"] if leg["account"] == account)
                key = (ledger, counterparty)
                batch.positions[key] = batch.positions.get(key, 0) + amount
                batch.transfers += 1
    return [batches[key] for key in sorted(batches)]
