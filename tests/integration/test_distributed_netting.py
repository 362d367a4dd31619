"""Cross-ledger payments through clearing accounts and the netting report (CLD-US-009).

Two ledgers, each with its own writer; payments both ways in two netting batches, one of them
with a credit leg the destination rejects (refunded); retries of whole payments. The report,
read from the logs, must show every batch's clearing positions netting to zero.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from ledger.clearing import (
    clearing_account_id,
    clearing_accounts_open,
    netting_report,
    payment_cross_ledger,
)
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.services import ledger_create

pytestmark = pytest.mark.django_db


def fund(runtime, ledger: str, names: list[str], amount: int) -> list[str]:
    ids = [account_id_for(ledger, f"did:{n}") for n in names]
    commands = [Command("open_account", f"o-{n}", did=f"did:{n}") for n in names]
    commands += [Command("mint", f"m-{a}", account=a, amount=amount) for a in ids]
    assert all(r.ok for r in runtime.bus.execute(ledger, Request(commands)))
    return ids


def test_payments_both_ways_net_to_zero_per_batch(ledger_runtime):
    for code in ("GAMES", "STORE"):
        ledger_create(code=code, scale=2)
    assert ledger_runtime.shards.get("GAMES").writer is not ledger_runtime.shards.get(
        "STORE").writer
    clearing_accounts_open(ledgers=["GAMES", "STORE"])
    clearing_accounts_open(ledgers=["GAMES", "STORE"])  # idempotent
    [alice] = fund(ledger_runtime, "GAMES", ["alice"], 1_000)
    [bob, carol] = fund(ledger_runtime, "STORE", ["bob", "carol"], 1_000)
    # Liquidity each side keeps for the other: the clearing accounts are prefunded.
    for ledger, other in (("GAMES", "STORE"), ("STORE", "GAMES")):
        ledger_runtime.bus.execute(ledger, Request([Command(
            "mint", f"liquidity-{ledger}", account=clearing_account_id(ledger, other),
            amount=500)]))

    paid = payment_cross_ledger(
        payment_id="p1", netting_batch_id="n1", source_ledger="GAMES", payer=alice,
        destination_ledger="STORE", payee=bob, amount=300)
    assert paid.ok
    back = payment_cross_ledger(
        payment_id="p2", netting_batch_id="n1", source_ledger="STORE", payer=carol,
        destination_ledger="GAMES", payee=alice, amount=120)
    assert back.ok
    # A retried payment applies nothing again.
    again = payment_cross_ledger(
        payment_id="p1", netting_batch_id="n1", source_ledger="GAMES", payer=alice,
        destination_ledger="STORE", payee=bob, amount=300)
    assert again.debit.replayed and again.credit.replayed
    # More than the destination's liquidity: the credit leg is rejected, the debit refunded.
    too_much = payment_cross_ledger(
        payment_id="p3", netting_batch_id="n2", source_ledger="GAMES", payer=alice,
        destination_ledger="STORE", payee=bob, amount=800)
    assert not too_much.ok and too_much.code == ResultCode.insufficient_funds
    assert too_much.refund.ok

    store = ledger_runtime.shards
    head = store.get("GAMES").store.head()[0]
    assert store.get("GAMES").store.account_snapshot_at(alice, head)[1] == 1_000 - 300 + 120
    head = store.get("STORE").store.head()[0]
    assert store.get("STORE").store.account_snapshot_at(bob, head)[1] == 1_300

    batches = {b.netting_batch_id: b for b in netting_report(ledgers=["GAMES", "STORE"])}
    assert set(batches) == {"n1", "n2"}
    n1 = batches["n1"]
    assert n1.positions == {("GAMES", "STORE"): 300 - 120, ("STORE", "GAMES"): -300 + 120}
    assert n1.transfers == 4 and n1.balanced
    assert batches["n2"].positions == {("GAMES", "STORE"): 0} and batches["n2"].balanced

    out = io.StringIO()
    call_command("netting_report", "--ledger", "GAMES", "--ledger", "STORE", "--json",
                 stdout=out)
    report = json.loads(out.getvalue())
    assert report["unbalanced"] == []
    assert [b["netting_batch_id"] for b in report["batches"]] == ["n1", "n2"]


def test_the_report_flags_a_batch_that_does_not_net_to_zero(ledger_runtime):
    for code in ("GAMES", "STORE"):
        ledger_create(code=code, scale=2)
    clearing_accounts_open(ledgers=["GAMES", "STORE"])
    [alice] = fund(ledger_runtime, "GAMES", ["alice"], 100)
    # Only the debit leg, as if the credit leg had never been sent.
    ledger_runtime.bus.execute("GAMES", Request([Command(
        "transfer", "half", account=alice, to=clearing_account_id("GAMES", "STORE"),
        amount=40, netting_batch_id="broken")]))
    [batch] = netting_report(ledgers=["GAMES", "STORE"])
    assert not batch.balanced and batch.net == 40
    with pytest.raises(Exception, match="do not net to zero: broken"):
        call_command("netting_report", stdout=io.StringIO())
