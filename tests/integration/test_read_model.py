"""The Django read models follow the event log: ledger registry, projector, rebuild, healthz; the
projector fed from memory (`GroupFeed`) writes exactly the rows it writes from the store."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from ledger import services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.group_feed import GroupFeed
from ledger.models import Account, Hold, Ledger, ProjectionCursor
from ledger.projector import catch_up, project, rebuild

pytestmark = pytest.mark.django_db(transaction=True)


def acc(did: str) -> str:
    return account_id_for("EUR", did)


def run(*commands: Command) -> list:
    results = services.commands_execute(ledger="EUR", commands=list(commands))
    assert all(r.ok for r in results), results
    return results


def rows(ledger: Ledger) -> list[tuple]:
    accounts = [
        (a.id, a.did, a.kind, a.status, a.tags, a.safeguarding, a.position, a.opened_seq,
         a.last_seq, *a.balances.values())
        for a in Account.objects.filter(ledger=ledger).order_by("position")
    ]
    holds = list(Hold.objects.filter(ledger=ledger).order_by("created_seq").values_list())
    return accounts + holds


def test_creating_a_ledger_opens_its_shard_with_issuance_and_fee_pool(ledger_runtime):
    ledger, created = services.ledger_create(code="EUR", scale=2)

    assert created
    kinds = dict(Account.objects.filter(ledger=ledger).values_list("did", "kind"))
    assert kinds == {"system:issuance": "system", "system:fee-pool": "fee_pool"}
    assert ProjectionCursor.objects.get(ledger=ledger).last_seq == 1
    assert ledger_runtime.shards.get("EUR").store.head()[0] == 1


def test_ledger_creation_is_idempotent_per_scale(ledger_runtime):
    first, _ = services.ledger_create(code="EUR", scale=2)
    again, created = services.ledger_create(code="EUR", scale=2)
    assert (again.pk, created) == (first.pk, False)
    with pytest.raises(services.LedgerConflict):
        services.ledger_create(code="EUR", scale=3)
    for code, scale in (("eur", 2), ("E-1", 2), ("", 2), ("EUR", -1), ("EUR", 19)):
        with pytest.raises(services.InvalidLedger):
            services.ledger_create(code=code, scale=scale)
    assert Ledger.objects.count() == 1


def test_projection_matches_the_writer_state_and_a_rebuild_gives_the_same_rows(ledger_runtime):
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    run(Command("open_account", "o1", did="alice", tags=["vip"]),
        Command("open_account", "o2", did="bob"),
        Command("open_account", "o3", did="clearing:eur", kind="clearing"))
    run(Command("mint", "m1", account=acc("alice"), amount=10_000),
        Command("transfer", "t1", account=acc("alice"), to=acc("bob"), amount=2_500,
                netting_batch_id="nb-1"),
        Command("hold", "h1", account=acc("alice"), beneficiary=acc("bob"), amount=1_000,
                hold_id="hld_eur_order1"),
        Command("hold", "h2", account=acc("bob"), amount=500, hold_id="hld_eur_order2"),
        Command("stake_lock", "s1", account=acc("alice"), amount=100, escrow_id="esc-1"),
        Command("fee_transfer", "f1", account=acc("bob"), amount=25),
        Command("promo_mint", "p1", account=acc("bob"), amount=300))
    run(Command("release", "r1", hold_id="hld_eur_order1", amount=600),
        Command("cancel_hold", "c1", hold_id="hld_eur_order2"),
        Command("freeze_account", "fz", account=acc("bob")))

    applied = catch_up(ledger, ledger_runtime.shards.get("EUR").store)

    state = ledger_runtime.shards.get("EUR").writer.machine.state
    assert applied == state.next_seq - 2  # all but the two genesis events, projected before
    for account in Account.objects.filter(ledger=ledger):
        live = state.accounts[account.id]
        assert account.balances == live.balances
        assert (account.status, account.last_seq, account.position) == (
            live.status, live.last_seq, live.position)
    assert Account.objects.get(id=acc("bob")).status == "frozen"
    held = {h.id: (h.status, h.captured) for h in Hold.objects.all()}
    assert held == {"hld_eur_order1": ("released", 600), "hld_eur_order2": ("cancelled", 0)}
    assert sum(sum(a.balances.values()) for a in Account.objects.all()) == 0

    before = rows(ledger)
    assert rebuild(ledger, ledger_runtime.shards.get("EUR").store) == state.next_seq
    assert rows(ledger) == before


def test_projecting_twice_applies_nothing_twice(ledger_runtime):
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    run(Command("open_account", "o1", did="alice"),
        Command("mint", "m1", account=acc("alice"), amount=700))
    store = ledger_runtime.shards.get("EUR").store
    catch_up(ledger, store)
    assert catch_up(ledger, store) == 0
    assert Account.objects.get(id=acc("alice")).available == 700


def test_the_database_refuses_a_negative_customer_balance(ledger_runtime):
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    issuance = Account.objects.get(ledger=ledger, kind="system")
    issuance.available = -5  # the issuance account may go negative
    issuance.save()
    customer = Account.objects.get(ledger=ledger, kind="fee_pool")
    customer.fee = -1
    with pytest.raises(IntegrityError), transaction.atomic():
        customer.save()


def test_healthz_reports_version_and_each_shards_last_seq(ledger_runtime, client):
    services.ledger_create(code="EUR", scale=2)
    services.ledger_create(code="USD", scale=2)
    run(Command("open_account", "o1", did="alice"))

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"]
    assert body["shards"] == {"EUR": {"last_seq": 2}, "USD": {"last_seq": 1}}


def feed_workload() -> None:
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
    feed = GroupFeed()
    shard.writer.durable_listeners.append(
        lambda events, last_seq: feed.add("EUR", events, last_seq))
    feed_workload()

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
    feed = GroupFeed()  # listens from here on
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


def fed_after_projection(ledger_runtime):
    """(ledger, shard, feed, cursor): EUR projected, then `feed_workload` run into a feed."""
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    shard = ledger_runtime.shards.get("EUR")
    catch_up(ledger, shard.store)
    feed = GroupFeed()
    shard.writer.durable_listeners.append(
        lambda events, last_seq: feed.add("EUR", events, last_seq))
    feed_workload()
    return ledger, shard, feed, ProjectionCursor.objects.get(ledger=ledger).last_seq


def test_a_round_takes_all_the_feed_holds_in_one_transaction(ledger_runtime):
    # The store path's cap (`limit`) does not apply to events already in memory: one round
    # writes each touched account once, however many groups the feed holds.
    ledger, shard, feed, start = fed_after_projection(ledger_runtime)
    held = shard.writer.last_seq - start
    assert held > 3
    assert project(ledger, shard.store, feed=feed, limit=3) == held
    assert project(ledger, shard.store, feed=feed, limit=3) == 0
    fed = rows(ledger)
    rebuild(ledger, shard.store)
    assert rows(ledger) == fed


def test_projection_stops_at_the_seq_asked_for(ledger_runtime):
    # A background round projects up to the last seq notified before it began; the groups
    # committed meanwhile wait for the next round.
    ledger, shard, feed, start = fed_after_projection(ledger_runtime)
    assert catch_up(ledger, shard.store, feed, until_seq=start + 5) == 5
    assert ProjectionCursor.objects.get(ledger=ledger).last_seq == start + 5
    assert catch_up(ledger, shard.store, feed, until_seq=start + 5) == 0
    assert catch_up(ledger, shard.store, feed) == shard.writer.last_seq - start - 5
    fed = rows(ledger)
    rebuild(ledger, shard.store)
    assert rows(ledger) == fed
