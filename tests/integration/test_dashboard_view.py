"""The compliance dashboard page: staff login, initial state, alerts only with permission.
(tests/e2e/test_browser_dashboard.py drives it live in Chromium.)"""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from aml.models import Alert
from monitoring.models import MonitorState

pytestmark = pytest.mark.django_db


def state_of(response) -> dict:
    html = response.content.decode()
    start = html.index('id="dashboard-state"')
    return json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])


def test_anonymous_visitors_are_sent_to_the_staff_login():
    response = Client().get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/login/?next=/dashboard/"
    assert Client().get("/dashboard/login/").status_code == 200


def test_non_staff_users_cannot_log_in():
    get_user_model().objects.create_user("customer", password="a-long-password-9")
    client = Client()
    response = client.post("/dashboard/login/", {"username": "customer",
                                                 "password": "a-long-password-9"})
    assert response.status_code == 200 and b"staff account" in response.content
    assert client.get("/dashboard/").status_code == 302


def test_staff_see_totals_and_alerts_as_permitted():
    MonitorState.objects.create(ledger="EUR", last_seq=41, outstanding_minor=123_456,
                                customer_funds_minor=100_000)
    Alert.objects.create(ledger="EUR", rule="large_transfer", account="acc_eur_x",
                         event_id="evt_eur_1", seq=41, amount=2_000_000)
    officer = get_user_model().objects.create_user("officer", password="x", is_staff=True)
    client = Client()
    client.force_login(officer)
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b'id="alerts"' not in page.content
    state = state_of(page)
    assert state["alerts"] is None
    assert state["ledgers"][0]["totals"] == {"ledger": "EUR", "seq": 41,
                                             "outstanding_minor": 123_456,
                                             "customer_funds_minor": 100_000}
    officer.user_permissions.add(Permission.objects.get(codename="view_alert"))
    client.force_login(get_user_model().objects.get(pk=officer.pk))
    page = client.get("/dashboard/")
    assert b'id="alerts"' in page.content
    assert [(a["rule"], a["status"]) for a in state_of(page)["alerts"]] == [
        ("large_transfer", "open")]
