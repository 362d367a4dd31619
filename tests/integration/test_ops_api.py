"""The ops API (/api/ops/, DRF): API clients and keys, KYC/AML documents, the error shape."""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apiaccess.keys import api_client_get_or_create, api_key_cache_clear, api_key_issue
from apiaccess.models import ApiKey
from ledger import services
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ops.models import Document

pytestmark = pytest.mark.django_db

ALICE = account_id_for("EUR", "did:example:alice")


@pytest.fixture(autouse=True)
def _fresh():
    api_key_cache_clear()
    yield
    api_key_cache_clear()


@pytest.fixture
def operator() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("operator", password="pw"))
    return client


@pytest.fixture
def alice(ledger_runtime) -> str:
    ledger, _ = services.ledger_create(code="EUR", scale=2)
    services.commands_execute(ledger="EUR", commands=[
        Command("open_account", "open-alice", "setup", did="did:example:alice")])
    services.ledger_project(ledger=ledger)
    return ALICE


def test_keys_are_issued_once_and_revoked(operator) -> None:
    user = get_user_model().objects.create_user("shop")
    created = operator.post("/api/ops/clients/", {"name": "shop", "user": "shop"},
                            content_type="application/json")
    assert created.status_code == 201 and created.json()["command_client"].startswith("api:")
    issued = operator.post("/api/ops/keys/", {"client": created.json()["id"],
                                              "scopes": ["read"]},
                           content_type="application/json")
    assert issued.status_code == 201
    raw_key = issued.json()["key"]
    assert raw_key.startswith("lfs_") and ApiKey.objects.get().key_hash != raw_key
    listed = operator.get("/api/ops/keys/").json()["results"]
    assert "key" not in listed[0] or listed[0]["key"] is None
    api = Client(headers={"authorization": f"Bearer {raw_key}"})
    assert api.get("/api/v1/ledgers").status_code == 200
    revoked = operator.post(f"/api/ops/keys/{issued.json()['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert api.get("/api/v1/ledgers").status_code == 401
    assert user.api_clients.get().name == "shop"


def test_bad_scopes_are_refused_with_field_errors(operator) -> None:
    client = api_client_get_or_create(name="shop")
    response = operator.post("/api/ops/keys/", {"client": client.pk, "scopes": ["root"]},
                             content_type="application/json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "request_invalid" and "scopes" in body["details"]["fields"]


def test_managing_keys_needs_permission(alice) -> None:
    clerk = get_user_model().objects.create_user("clerk", is_staff=True)
    client = Client()
    client.force_login(clerk)
    response = client.get("/api/ops/keys/", HTTP_ACCEPT="application/json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_documents_are_stored_hashed_and_served_back(operator, alice) -> None:
    content = b"%PDF-1.7 passport scan"
    response = operator.post("/api/ops/documents/", {
        "kind": "kyc_identity", "account": alice,
        "file": SimpleUploadedFile("passport.pdf", content, "application/pdf"),
    })
    assert response.status_code == 201, response.content
    document = response.json()
    assert document["sha256"] == hashlib.sha256(content).hexdigest()
    assert document["size"] == len(content) and document["filename"] == "passport.pdf"
    stored = Document.objects.get()
    assert str(settings.LEDGERFS_DATA_DIR / "documents") in stored.file.path
    download = operator.get(f"/api/ops/documents/{document['id']}/download/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == content


def test_a_document_needs_an_account_or_an_event(operator, alice) -> None:
    response = operator.post("/api/ops/documents/", {
        "kind": "aml_report", "file": SimpleUploadedFile("r.txt", b"x"),
    })
    assert response.status_code == 422 and response.json()["code"] == "request_invalid"
    response = operator.post("/api/ops/documents/", {
        "kind": "aml_check", "event_id": "evt_eur_000000000004aa", "file":
        SimpleUploadedFile("check.json", b"{}"),
    })
    assert response.status_code == 201


def test_ops_errors_have_the_api_error_shape(alice) -> None:
    anonymous = Client().get("/api/ops/accounts/", HTTP_ACCEPT="application/json")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "authentication_required"
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    client = api_client_get_or_create(name="reader")
    _, raw_key = api_key_issue(client=client, scopes="read")
    reader = Client(headers={"authorization": f"Bearer {raw_key}"})
    response = reader.get("/api/ops/accounts/")
    assert response.status_code == 403 and response.json()["code"] == "scope_required"
    bad_key = Client(headers={"authorization": "Bearer lfs_0123456789ab_nope"})
    assert bad_key.get("/api/ops/accounts/").json()["code"] == "api_key_invalid"
    missing = Client().get("/api/ops/nothing-here/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_the_ops_api_is_browsable(operator, alice) -> None:
    page = operator.get("/api/ops/accounts/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"did:example:alice" in page.content
