"""Operator actions in the admin go through the command path and are audit-logged."""

from __future__ import annotations

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command

from ledger import services
from ledger.core.state import account_id_for
from ledger.models import Account, OperatorAction

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/ledger/account/"


def operator(*permissions: str):
    user = get_user_model().objects.create_user("op", password="pw", is_staff=True)
    codenames = ["view_account", *permissions]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def eur(ledger_runtime):
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    return ledger


def test_an_operator_opens_an_account_and_the_event_names_them(eur, client, ledger_runtime):
    user = operator("open_ledger_account")
    client.force_login(user)

    response = client.post(f"{CHANGELIST}open/", {
        "ledger": eur.pk, "did": "did:example:dora", "kind": "user", "tags": "vip, kyc-2",
        "safeguarding": "",
    })

    assert response.status_code == 302
    account = Account.objects.get(did="did:example:dora")
    assert (account.kind, account.tags, account.safeguarding) == (
        "user", ["vip", "kyc-2"], "customer_funds")
    action = OperatorAction.objects.get()
    assert (action.user, action.action, action.code) == (user, "open_account", "ok")
    event = orjson.loads(ledger_runtime.shards.get("EUR").store.get(action.event_seq).body)
    assert event["type"] == "account_opened"
    assert event["client"] == f"operator:{user.pk}"


def test_opening_a_taken_did_is_refused_and_still_audited(eur, client):
    client.force_login(operator("open_ledger_account"))
    form = {"ledger": eur.pk, "did": "did:example:dora", "kind": "user", "tags": ""}
    client.post(f"{CHANGELIST}open/", form)

    response = client.post(f"{CHANGELIST}open/", form, follow=True)

    assert b"account_already_exists" in response.content
    assert list(OperatorAction.objects.order_by("pk").values_list("code", flat=True)) == [
        "ok", "account_already_exists"]


def test_opening_needs_its_permission(eur, client):
    client.force_login(operator())
    response = client.post(f"{CHANGELIST}open/", {"ledger": eur.pk, "did": "x", "kind": "user"})
    assert response.status_code == 403
    assert not Account.objects.filter(did="x").exists()


def test_freeze_and_mint_actions(eur, client):
    alice = services.account_open(user=operator_superuser(), ledger=eur, did="alice")
    assert alice.ok
    account_id = account_id_for("EUR", "alice")
    user = operator("freeze_ledger_account", "mint_ledger_money")
    client.force_login(user)

    # Mint: the action first shows a form, then mints on submit.
    form_page = client.post(CHANGELIST, {"action": "mint_into_account",
                                         "_selected_action": [account_id]})
    assert form_page.status_code == 200 and b"Mint into" in form_page.content
    client.post(CHANGELIST, {"action": "mint_into_account", "_selected_action": [account_id],
                             "amount": "1250"})
    assert Account.objects.get(id=account_id).available == 1250

    client.post(CHANGELIST, {"action": "freeze_accounts", "_selected_action": [account_id]})
    assert Account.objects.get(id=account_id).status == "frozen"

    audit = list(OperatorAction.objects.filter(user=user).order_by("pk").values_list(
        "action", "code"))
    assert audit == [("mint", "ok"), ("freeze_account", "ok")]


def test_actions_without_permission_change_nothing(eur, client):
    services.account_open(user=operator_superuser(), ledger=eur, did="alice")
    account_id = account_id_for("EUR", "alice")
    client.force_login(operator())  # may view, may not mint or freeze

    for action in ("mint_into_account", "freeze_accounts"):
        client.post(CHANGELIST, {"action": action, "_selected_action": [account_id],
                                 "amount": "5"})

    account = Account.objects.get(id=account_id)
    assert (account.available, account.status) == (0, "open")
    assert not OperatorAction.objects.filter(user__username="op").exists()


def test_ledger_state_is_read_only_in_the_admin(eur, client):
    admin = operator_superuser()
    client.force_login(admin)
    issuance = Account.objects.get(ledger=eur, kind="system")
    page = client.get(f"{CHANGELIST}{issuance.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = client.post(f"{CHANGELIST}{issuance.pk}/change/", {"available": "999"})
    assert response.status_code == 403
    assert Account.objects.get(pk=issuance.pk).available == 0


def test_demo_data_loads_once(ledger_runtime, capsys):
    call_command("load_demo", "--if-empty")
    first = Account.objects.count()
    call_command("load_demo", "--if-empty")
    assert Account.objects.count() == first == 7
    assert "login: demo / " in capsys.readouterr().out
    assert sum(sum(a.balances.values()) for a in Account.objects.all()) == 0


def operator_superuser():
    user, _ = get_user_model().objects.get_or_create(
        username="root", defaults={"is_staff": True, "is_superuser": True}
    )
    return user
