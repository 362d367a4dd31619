"""Object permissions (django-guardian) decide which accounts a user sees, in every interface:
the ledger API, the ops API and the admin. A support user sees the accounts granted to them,
an auditor (the "auditors" group: model-level view permission) sees all."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from guardian.shortcuts import assign_perm

from apiaccess.keys import api_client_get_or_create, api_key_cache_clear, api_key_issue
from ledger import services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.models import Account, Ledger
from ledger.permissions import (
    AUDITORS_GROUP,
    account_view_allowed,
    accounts_view_all,
    accounts_visible,
    grant_cache_clear,
)
from ops.models import Document

pytestmark = pytest.mark.django_db

GRANTED = account_id_for("EUR", "did:example:granted")
HIDDEN = account_id_for("EUR", "did:example:hidden")


@pytest.fixture(autouse=True)
def world(ledger_runtime):
    """EUR with two accounts, projected into the read model (the admin and ops API show it)."""
    api_key_cache_clear()
    grant_cache_clear()
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    services.commands_execute(ledger="EUR", commands=[
        Command("open_account", f"open-{did}", "setup", did=did)
        for did in ("did:example:granted", "did:example:hidden")
    ])
    services.ledger_project(ledger=ledger)
    yield
    api_key_cache_clear()
    grant_cache_clear()


def _staff(username: str, *permissions: str):
    user = get_user_model().objects.create_user(username, password="pw-" + username,
                                                is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def support():
    user = _staff("support", "view_document")
    assign_perm("ledger.view_account", user, Account.objects.get(pk=GRANTED))
    return user


@pytest.fixture
def auditor():
    user = _staff("auditor")
    user.groups.add(Group.objects.get(name=AUDITORS_GROUP))
    return user


def _bearer(user, scopes: str = "read,admin") -> Client:
    client = api_client_get_or_create(name=f"client-of-{user.username}",
                                      username=user.username)
    _, raw_key = api_key_issue(client=client, scopes=scopes)
    return Client(headers={"authorization": f"Bearer {raw_key}"})


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- ledger API ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/v1/accounts/{id}", "/api/v1/balances?account={id}", "/api/v1/events?account={id}",
])
def test_ledger_api_reads_follow_object_permissions(support, auditor, path) -> None:
    as_support, as_auditor = _bearer(support), _bearer(auditor)
    assert as_support.get(path.format(id=GRANTED)).status_code == 200
    denied = as_support.get(path.format(id=HIDDEN))
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert as_auditor.get(path.format(id=HIDDEN)).status_code == 200


def test_only_who_sees_all_accounts_reads_the_whole_log(support, auditor) -> None:
    assert _bearer(support).get("/api/v1/events?ledger=EUR").status_code == 403
    assert _bearer(auditor).get("/api/v1/events?ledger=EUR").status_code == 200


def test_another_clients_account_cannot_be_claimed_by_its_did(support) -> None:
    response = _bearer(support, "read,write").post(
        "/api/v1/accounts", {"ledger": "EUR", "did": "did:example:hidden"},
        content_type="application/json",
    )
    assert response.status_code == 403


def test_a_client_sees_the_accounts_it_opened(support) -> None:
    client = _bearer(support, "read,write")
    created = client.post("/api/v1/accounts", {"ledger": "EUR", "did": "did:example:new"},
                          content_type="application/json")
    assert created.status_code == 201
    assert client.get(f"/api/v1/balances?account={created.json()['id']}").status_code == 200


# -- ops API -------------------------------------------------------------------------------------

@pytest.mark.parametrize("connect", [_session, _bearer], ids=["session", "api-key"])
def test_ops_api_lists_and_shows_only_permitted_accounts(support, auditor, connect) -> None:
    as_support, as_auditor = connect(support), connect(auditor)
    listed = as_support.get("/api/ops/accounts/", HTTP_ACCEPT="application/json").json()
    assert [account["id"] for account in listed["results"]] == [GRANTED]
    assert as_support.get(f"/api/ops/accounts/{GRANTED}/").status_code == 200
    hidden = as_support.get(f"/api/ops/accounts/{HIDDEN}/", HTTP_ACCEPT="application/json")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    everything = as_auditor.get("/api/ops/accounts/").json()["results"]
    assert {account["id"] for account in everything} >= {GRANTED, HIDDEN}


def test_documents_follow_the_account_they_are_attached_to(support, auditor) -> None:
    uploader = get_user_model().objects.create_superuser("root", password="pw")
    for account in (GRANTED, HIDDEN):
        Document.objects.create(
            kind="kyc_identity", account_id=account, file=SimpleUploadedFile("id.pdf", b"%PDF"),
            filename="id.pdf", size=4, sha256="0" * 64, uploaded_by=uploader,
        )
    seen = _session(support).get("/api/ops/documents/").json()["results"]
    assert [document["account"] for document in seen] == [GRANTED]
    assert len(_session(auditor).get("/api/ops/documents/").json()["results"]) == 2


# -- admin ---------------------------------------------------------------------------------------

def test_admin_shows_a_support_user_only_granted_accounts(support, auditor) -> None:
    as_support = _session(support)
    listing = as_support.get("/admin/ledger/account/")
    assert listing.status_code == 200
    assert b"did:example:granted" in listing.content
    assert b"did:example:hidden" not in listing.content
    assert as_support.get(f"/admin/ledger/account/{GRANTED}/change/").status_code == 200
    hidden = as_support.get(f"/admin/ledger/account/{HIDDEN}/change/")
    assert hidden.status_code in (302, 403) and b"did:example:hidden" not in hidden.content
    listing = _session(auditor).get("/admin/ledger/account/")
    assert b"did:example:hidden" in listing.content


def test_admin_actions_still_work_for_operators() -> None:
    operator = get_user_model().objects.create_superuser("operator", password="pw")
    response = _session(operator).post("/admin/ledger/account/", {
        "action": "freeze_accounts", "_selected_action": [HIDDEN],
    })
    assert response.status_code == 302
    services.ledger_project(ledger=Ledger.objects.get(code="EUR"))
    assert Account.objects.get(pk=HIDDEN).status == "frozen"


def test_anonymous_users_see_no_account() -> None:
    anonymous = AnonymousUser()
    assert not accounts_visible(anonymous).exists()
    assert not account_view_allowed(anonymous, GRANTED) and not accounts_view_all(anonymous)
    assert Client().get("/admin/login/").status_code == 200
