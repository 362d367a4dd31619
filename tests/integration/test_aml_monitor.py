"""The monitor over a real shard (RocksDB writer, database): AML checks and alerts recorded
exactly once per event, retrievable by event id; restarts resume from the stored cursor with
warm windows; threshold and watch-list edits apply within a second; alerts change only with an
acting user; the totals match the ledger."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from aml import services as aml_services
from aml.models import Alert, AlertAction, AmlCheck, WatchedDid
from aml.selectors import aml_check_get
from ledger import services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.stream import InProcessEventStream
from monitoring import monitor as monitor_module
from monitoring.models import MonitorState
from monitoring.monitor import LedgerMonitor, MonitorConflict

pytestmark = pytest.mark.django_db

LEDGER = "EUR"
ALICE = account_id_for(LEDGER, "did:alice")
BOB = account_id_for(LEDGER, "did:bob")


@pytest.fixture
def ledger(ledger_runtime, monkeypatch):
    monkeypatch.setattr(aml_services, "REFRESH_SECONDS", 0.0)
    services.ledger_create(code=LEDGER, scale=2)
    rules = aml_services.rules_get(ledger=LEDGER)
    rules.large_transfer_minor = 10_000
    rules.velocity_count = 3
    rules.velocity_amount_minor = 0
    rules.structuring_count = 0
    rules.new_account_inflow_minor = 0
    aml_services.rules_save(rules=rules, user=None)
    # Funded in mints under the large-transfer threshold: none of them is an alert.
    run([Command("open_account", "o-a", did="did:alice"),
         Command("open_account", "o-b", did="did:bob"),
         *(Command("mint", f"m-a{i}", account=ALICE, amount=10_000 - 1) for i in range(10))])
    return ledger_runtime.shards.get(LEDGER).store


def run(commands: list[Command]) -> list:
    results = services.commands_execute(ledger=LEDGER, commands=commands)
    assert all(r.code.name == "ok" for r in results), results
    return results


def transfer(key: str, amount: int, payer: str = ALICE, payee: str = BOB):
    [result] = run([Command("transfer", key, account=payer, to=payee, amount=amount)])
    return result.event.body["id"]


FUNDS = 10 * (10_000 - 1)
MINTS = 10


def monitor_of(store) -> LedgerMonitor:
    monitor = LedgerMonitor(InProcessEventStream(), store, LEDGER)
    monitor.step(0)
    return monitor


def test_each_screened_event_gets_one_check_retrievable_by_event_id(ledger):
    monitor = monitor_of(ledger)
    quiet = transfer("t1", 9_999)
    loud = transfer("t2", 10_000)
    monitor.step(0)
    monitor.step(0)  # nothing new: nothing recorded twice
    # The mints and two transfers; account openings are not screened.
    assert AmlCheck.objects.count() == MINTS + 2
    assert aml_check_get(event_id=quiet)["outcome"] == "clear"
    document = aml_check_get(event_id=loud)
    assert document["outcome"] == "alert"
    assert document["rules"] == {"large_transfer": "hit", "velocity": "pass",
                                 "structuring": "off", "new_account_inflow": "off",
                                 "watchlist": "off"}
    assert (document["payer"], document["payee"], document["amount"]) == (ALICE, BOB, 10_000)
    assert [a["rule"] for a in document["alerts"]] == ["large_transfer"]
    assert aml_check_get(event_id="evt_eur_nope") is None
    alert = Alert.objects.get()
    assert (alert.rule, alert.account, alert.status) == ("large_transfer", ALICE, "open")
    assert list(alert.actions.values_list("user", "to_status")) == [(None, "open")]
    assert MonitorState.objects.get(ledger=LEDGER).last_seq == ledger.head()[0]


def test_a_restarted_monitor_resumes_at_its_cursor_with_warm_windows(ledger):
    monitor_of(ledger)
    transfer("t1", 1)
    transfer("t2", 1)
    monitor_of(ledger)  # restart: replays the windows from the log, records nothing again
    assert AmlCheck.objects.count() == MINTS + 2 and not Alert.objects.exists()
    third = transfer("t3", 1)
    monitor_of(ledger)
    assert list(Alert.objects.values_list("rule", "event_id")) == [("velocity", third)]
    assert AmlCheck.objects.count() == MINTS + 3


def test_two_monitors_on_one_ledger_cannot_both_record(ledger):
    first = monitor_of(ledger)
    second = monitor_of(ledger)
    transfer("t1", 1)
    first.step(0)
    with pytest.raises(MonitorConflict):
        second.step(0)
    assert AmlCheck.objects.count() == MINTS + 1


def test_threshold_and_watchlist_edits_apply_to_the_next_event(ledger):
    monitor = monitor_of(ledger)
    rules = aml_services.rules_get(ledger=LEDGER)
    rules.large_transfer_minor = 500
    aml_services.rules_save(rules=rules, user=None)
    WatchedDid.objects.create(did="did:bob", reason="sanctions list")
    event_id = transfer("t1", 500)
    monitor.step(0)
    check = aml_check_get(event_id=event_id)
    assert check["thresholds_version"] == rules.version == 3  # created, fixture, here
    assert sorted(a["rule"] for a in check["alerts"]) == ["large_transfer", "watchlist"]
    assert Alert.objects.get(rule="watchlist").detail == {"did": "did:bob", "role": "payee"}


def test_alerts_change_with_the_acting_user_and_a_note(ledger, monkeypatch):
    sent = []
    monkeypatch.setattr("monitoring.broadcast.group_send", lambda g, m: sent.append(m))
    monitor = monitor_of(ledger)
    transfer("t1", 20_000)
    monitor.step(0)
    alert = Alert.objects.get()
    officer = get_user_model().objects.create_user("officer")
    aml_services.alert_update(alert_id=alert.pk, user=officer, status="investigating",
                              note="calling the customer")
    aml_services.alert_update(alert_id=alert.pk, user=officer, note="no answer")
    aml_services.alert_update(alert_id=alert.pk, user=officer, status="investigating")
    with pytest.raises(aml_services.AlertStatusInvalid):
        aml_services.alert_update(alert_id=alert.pk, user=officer, status="solved")
    actions = AlertAction.objects.filter(alert=alert).values_list(
        "user__username", "from_status", "to_status", "note")
    assert list(actions) == [
        (None, "", "open", ""),
        ("officer", "open", "investigating", "calling the customer"),
        ("officer", "investigating", "investigating", "no answer"),
    ]
    assert Alert.objects.get().status == "investigating"


def test_totals_follow_the_ledger(ledger):
    monitor = monitor_of(ledger)
    carol = account_id_for(LEDGER, "did:carol")
    run([Command("open_account", "o-c", did="did:carol", kind="reserve"),
         Command("mint", "m-c", account=carol, amount=7_000),
         Command("burn", "b-a", account=ALICE, amount=1_000)])
    transfer("t1", 2_500)
    monitor.step(0)
    state = MonitorState.objects.get(ledger=LEDGER)
    # Alice and Bob hold customer funds; Carol's reserve is own funds.
    assert state.customer_funds_minor == FUNDS - 1_000
    assert state.outstanding_minor == FUNDS + 7_000 - 1_000
    assert monitor.totals.as_json(state.last_seq)["outstanding_minor"] == FUNDS + 6_000


def test_the_monitor_queues_webhooks_for_the_subscriptions_concerned(ledger, monkeypatch):
    from webhooks.models import Delivery, Subscription

    kicked = []
    monkeypatch.setattr(monitor_module, "deliveries_kick", kicked.append)
    monitor = monitor_of(ledger)
    alerts = Subscription.objects.create(name="alerts", url="https://example.com/a",
                                         event_types=["aml.alert"])
    everything = Subscription.objects.create(name="all", url="https://example.com/b")
    Subscription.objects.create(name="usd", url="https://example.com/c", ledger="USD")
    Subscription.objects.create(name="off", url="https://example.com/d", active=False)
    transfer("t1", 50_000)
    monitor.subscriptions._loaded_at = float("-inf")
    monitor.step(0)
    assert kicked == [[alerts.pk, everything.pk]]
    rows = list(Delivery.objects.order_by("id").values_list("subscription", "event_type"))
    assert rows == [(everything.pk, "transfer"), (alerts.pk, "aml.alert"),
                    (everything.pk, "aml.alert")]


def test_the_admin_edits_thresholds_and_works_alerts(ledger, monkeypatch):
    from django.test import Client

    monkeypatch.setattr("monitoring.broadcast.group_send", lambda group, message: None)
    monitor = monitor_of(ledger)
    transfer("t1", 20_000)
    monitor.step(0)
    alert = Alert.objects.get()
    officer = get_user_model().objects.create_superuser("officer", password="x" * 20)
    browser = Client()
    browser.force_login(officer)
    rules = aml_services.rules_get(ledger=LEDGER)
    form = {field: getattr(rules, field) for field in (
        "large_transfer_minor", "velocity_count", "velocity_amount_minor",
        "velocity_window_seconds", "structuring_count", "structuring_margin_percent",
        "structuring_window_seconds", "new_account_age_seconds", "new_account_inflow_minor")}
    saved = browser.post(f"/admin/aml/amlrules/{rules.pk}/change/",
                         {**form, "large_transfer_minor": 5_000})
    assert saved.status_code == 302
    rules.refresh_from_db()
    assert (rules.large_transfer_minor, rules.version, rules.updated_by) == (5_000, 3, officer)
    page = browser.get(f"/admin/aml/alert/{alert.pk}/change/")
    assert page.status_code == 200 and b"large transfer on" in page.content
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             page.content.decode()))  # the inline's management form
    worked = browser.post(f"/admin/aml/alert/{alert.pk}/change/",
                          {**hidden, "status": "closed", "note": "known customer, documented"})
    assert worked.status_code == 302
    assert list(alert.actions.values_list("user__username", "to_status", "note"))[-1] == (
        "officer", "closed", "known customer, documented")
    assert browser.get(f"/admin/aml/amlcheck/{alert.event_id}/change/").status_code == 200
