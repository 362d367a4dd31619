"""The projector fed from memory (`ProjectionFeed`) writes exactly the rows it writes from the
store: every event type, holds resolved every way, accounts opened in the same batch."""

from __future__ import annotations

import pytest

from ledger import services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.models import Account, Hold, Ledger
from ledger.projection_feed import ProjectionFeed
from ledger.projector import catch_up, rebuild

pytestmark = pytest.mark.django_db(transaction=True)


def acc(did: str) -> str:
    return account_id_for("EUR", did)


def run(*commands: Command) -> list:
    results = services.commands_execute(ledger="EUR", commands=list(commands))
    assert all(r.ok for r in results), results
    return results


def rows(ledger: Ledger) -> list[tuple]:
    accounts = list(Account.objects.filter(ledger=ledger).order_by("position").values_list())
    holds = list(Hold.objects.filter(ledger=ledger).order_by("created_seq").values_list())
    return accounts + holds


def workload() -> None:
    run(Command("open_account", "o1", did="alice", tags=["vip"]),
        Command("open_account", "o2", did="bob"),
        Command("mint", "m1", account=acc("alice"), amount=10_000),
        Command("transfer", "t1", account=acc("alice"), to=acc("bob"), amount=2_500))
    run(Command("open_account", "o3", did="carol"),
        Command("transfer", "t2", account=acc("bob"), to=acc("carol"), amount=100,
                netting_batch_id="nb-1"),
        Command("hold", "h1", account=acc("alice"), beneficiary=acc("bob"), amount=1_000,
                hold_id="hld_eur_1"),
        Command("hold", "h2", account=acc("bob"), amount=500, hold_id="hld_eur_2"),
        Command("transfer", "t3", account=acc("alice"), to=acc("carol"), amount=7),
        Command("stake_lock", "s1", account=acc("alice"), amount=100, escrow_id="esc-1"),
        Command("fee_transfer", "f1", account=acc("bob"), amount=25),
        Command("promo_mint", "p1", account=acc("carol"), amount=300))
    run(Command("release", "r1", hold_id="hld_eur_1", amount=600),
        Command("cancel_hold", "c1", hold_id="hld_eur_2"),
        Command("transfer", "t4", account=acc("carol"), to=acc("alice"), amount=50),
        Command("freeze_account", "fz", account=acc("bob")),
        Command("burn", "b1", account=acc("alice"), amount=1))


def test_rows_from_the_feed_equal_rows_from_the_store(ledger_runtime, monkeypatch):
    ledger, _ = services.ledger_create(code="EUR", scale=2)  # projects the genesis events
    shard = ledger_runtime.shards.get("EUR")
    feed = ProjectionFeed()
    shard.writer.durable_listeners.append(
        lambda events, last_seq: feed.add("EUR", events, last_seq))
    workload()

    # Everything after the cursor is in the feed: no event is read back from the log (the
    # projector only looks there once more, to find the end).
    read = shard.store.read

    def read_nothing(*args, **kwargs):
        events = list(read(*args, **kwargs))
        assert events == [], "the projector read events that the feed held"
        return iter(events)

    monkeypatch.setattr(shard.store, "read", read_nothing)
    assert catch_up(ledger, shard.store, feed) == shard.writer.last_seq - 1
    monkeypatch.undo()
    fed = rows(ledger)
    assert Account.objects.get(id=acc("bob")).status == "frozen"
    assert {h.id: (h.status, h.captured) for h in Hold.objects.all()} == {
        "hld_eur_1": ("released", 600), "hld_eur_2": ("cancelled", 0)}

    rebuild(ledger, shard.store)
    assert rows(ledger) == fed


def test_events_the_feed_missed_are_read_from_the_store_first(ledger_runtime):
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    shard = ledger_runtime.shards.get("EUR")
    run(Command("open_account", "o1", did="alice"),
        Command("mint", "m1", account=acc("alice"), amount=900))
    feed = ProjectionFeed()  # listens from here on
    shard.writer.durable_listeners.append(
        lambda events, last_seq: feed.add("EUR", events, last_seq))
    run(Command("open_account", "o2", did="bob"),
        Command("transfer", "t1", account=acc("alice"), to=acc("bob"), amount=40))
    assert catch_up(ledger, shard.store, feed) == shard.writer.last_seq - 1
    assert (Account.objects.get(id=acc("alice")).available,
            Account.objects.get(id=acc("bob")).available) == (860, 40)
    fed = rows(ledger)
    rebuild(ledger, shard.store)
    assert rows(ledger) == fed
