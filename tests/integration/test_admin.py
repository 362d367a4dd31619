"""The operator console through Django's test client and the real database backend."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_login_page_is_branded(client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"LedgerFS operator console" in response.content
    assert b"/static/ledgerfs.css" in response.content


def test_anonymous_users_are_sent_to_login(client) -> None:
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_user_logs_in_and_sees_the_console(client) -> None:
    get_user_model().objects.create_superuser("operator", "operator@example.com", "s3cret-pass")
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "operator", "password": "s3cret-pass"}
    )
    assert response.status_code == 302
    index = client.get("/admin/")
    assert index.status_code == 200
    assert b"LedgerFS operator console" in index.content
