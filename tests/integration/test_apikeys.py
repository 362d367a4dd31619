"""API keys: `manage.py apikey`, storage, and the admin (issue once, revoke)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from apiaccess.keys import api_key_authenticate, api_key_cache_clear, key_hash
from apiaccess.models import ApiClient, ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    api_key_cache_clear()
    yield
    api_key_cache_clear()


def apikey(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_create_prints_the_key_last_and_stores_only_its_hash() -> None:
    raw_key = apikey("create", "--name", "shop", "--scopes", "read,write").splitlines()[-1]
    key = ApiKey.objects.get()
    assert raw_key.startswith(f"lfs_{key.prefix}_") and key.key_hash == key_hash(raw_key)
    assert raw_key not in str(ApiKey.objects.values().get())
    assert key.scopes == ["read", "write"] and key.client.user.username == "api-shop"
    assert not key.client.user.has_usable_password()
    assert api_key_authenticate(raw_key) == key
    assert api_key_authenticate(raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")) is None


def test_a_second_key_for_the_same_client_keeps_its_identity() -> None:
    apikey("create", "--name", "shop", "--scopes", "read")
    apikey("create", "--name", "shop", "--scopes", "write")
    assert ApiClient.objects.count() == 1 and ApiKey.objects.count() == 2


def test_a_client_can_act_as_an_existing_user() -> None:
    get_user_model().objects.create_user("support-anna")
    apikey("create", "--name", "anna-cli", "--scopes", "read", "--user", "support-anna")
    assert ApiClient.objects.get().user.username == "support-anna"


@pytest.mark.parametrize("args", [
    ("--scopes", "read,root"), ("--scopes", ""), ("--scopes", "read", "--user", "nobody"),
])
def test_bad_arguments_are_refused(args) -> None:
    with pytest.raises(CommandError):
        apikey("create", "--name", "shop", *args)
    assert not ApiKey.objects.exists()


def test_list_and_revoke() -> None:
    raw_key = apikey("create", "--name", "shop", "--scopes", "read").splitlines()[-1]
    prefix = ApiKey.objects.get().prefix
    assert prefix in apikey("list") and "active" in apikey("list")
    apikey("revoke", prefix)
    assert api_key_authenticate(raw_key) is None and "revoked" in apikey("list")
    with pytest.raises(CommandError):
        apikey("revoke", "000000000000")


def test_admin_issues_a_key_once_and_revokes_it() -> None:
    operator = get_user_model().objects.create_superuser("operator", password="pw")
    admin = Client()
    admin.force_login(operator)
    client = ApiClient.objects.create(name="shop", user=operator)
    response = admin.post("/admin/apiaccess/apikey/add/",
                          {"client": client.pk, "scopes": ["read", "write"]}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "lfs_" in str(m)]
    raw_key = shown[0].rsplit(" ", 1)[-1]
    key = ApiKey.objects.get()
    assert key.key_hash == key_hash(raw_key) and key.scopes == ["read", "write"]
    assert raw_key not in admin.get(f"/admin/apiaccess/apikey/{key.pk}/change/").content.decode()
    admin.post("/admin/apiaccess/apikey/", {"action": "revoke_keys",
                                            "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None and api_key_authenticate(raw_key) is None
