"""Webhook services against a local receiver, without Celery: the order of a subscription's
deliveries, backoff and giving up, the lease, redelivery, the SSRF guard, the ops API and the
admin. (tests/e2e/test_webhooks.py runs the whole path with a real worker.)"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apiaccess.keys import api_client_get_or_create, api_key_cache_clear, api_key_issue
from webhooks import services
from webhooks.core.signature import verify
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.targets import TargetRefused, target_resolve, url_check

pytestmark = pytest.mark.django_db


class Receiver:
    """Answers with the statuses given, in turn (200 once they run out)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[str, dict, bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed = verify("s" * 32, self.headers["LedgerFS-Signature"], body,
                                now=int(time.time()))
                receiver.received.append((self.headers["LedgerFS-Delivery"],
                                          orjson.loads(body), signed))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    settings.LEDGERFS_WEBHOOK_BACKOFF_MS = 1_000
    settings.LEDGERFS_WEBHOOK_MAX_ATTEMPTS = 2
    receiver = Receiver([])
    yield receiver
    receiver.stop()


def queue(subscription: Subscription, count: int) -> list[Delivery]:
    now = timezone.now()
    return Delivery.objects.bulk_create([
        Delivery(subscription=subscription, event_type="transfer", ledger="EUR", seq=seq,
                 event_id=f"evt_eur_{seq}", payload=orjson.dumps({"seq": seq}).decode(),
                 next_attempt_at=now)
        for seq in range(count)])


def test_deliveries_go_in_order_and_stop_at_a_failure(receiver):
    subscription = Subscription.objects.create(name="r", url=receiver.url, secret="s" * 32)
    queue(subscription, 4)
    receiver.statuses = [200, 503]
    again = services.subscription_deliver(subscription_id=subscription.pk)
    assert again == pytest.approx(1.0)  # the backoff after the first failed attempt
    assert [body["seq"] for _, body, _ in receiver.received] == [0, 1]
    assert all(signed for _, _, signed in receiver.received)
    statuses = list(Delivery.objects.order_by("seq").values_list("status", "attempts"))
    assert statuses == [("delivered", 1), ("pending", 1), ("pending", 0), ("pending", 0)]
    # Not due yet: nothing is sent, and the run says when to come back.
    waiting = services.subscription_deliver(subscription_id=subscription.pk)
    assert 0 < waiting <= 1.0 and len(receiver.received) == 2


def test_a_delivery_is_given_up_after_the_last_attempt_and_the_next_ones_go(receiver):
    subscription = Subscription.objects.create(name="r", url=receiver.url, secret="s" * 32)
    first, *_ = queue(subscription, 3)
    receiver.statuses = [500, 500]
    services.subscription_deliver(subscription_id=subscription.pk)
    Delivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    assert services.subscription_deliver(subscription_id=subscription.pk) is None
    assert list(Delivery.objects.order_by("seq").values_list("status", flat=True)) == [
        "failed", "delivered", "delivered"]
    log = Attempt.objects.filter(delivery=first).order_by("number")
    assert [(a.number, a.status_code, a.error) for a in log] == [
        (1, 500, "HTTP 500"), (2, 500, "HTTP 500")]
    # Manual redelivery: pending again with fresh attempts, sent on the next run.
    services.delivery_redeliver(delivery=Delivery.objects.get(pk=first.pk))
    services.subscription_deliver(subscription_id=subscription.pk)
    assert Delivery.objects.get(pk=first.pk).status == "delivered"
    assert [body["seq"] for _, body, _ in receiver.received] == [0, 0, 1, 2, 0]


def test_one_run_at_a_time_per_subscription(receiver):
    subscription = Subscription.objects.create(name="r", url=receiver.url, secret="s" * 32)
    queue(subscription, 1)
    Subscription.objects.filter(pk=subscription.pk).update(
        lease_until=timezone.now() + timedelta(seconds=60))
    assert services.subscription_deliver(subscription_id=subscription.pk) is None
    assert receiver.received == [] and services.subscriptions_due() == []
    Subscription.objects.filter(pk=subscription.pk).update(lease_until=None)
    assert services.subscriptions_due() == [subscription.pk]


def test_a_refused_target_is_a_failed_attempt_not_a_request(receiver, settings):
    settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    subscription = Subscription.objects.create(name="r", url=receiver.url, secret="s" * 32)
    [delivery] = queue(subscription, 1)
    services.subscription_deliver(subscription_id=subscription.pk)
    delivery.refresh_from_db()
    assert receiver.received == []
    assert delivery.status == "pending" and delivery.last_error.startswith("refused: ")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.9/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/", "http://localhost:8000/", "http://0.0.0.0/",
    "http://100.64.0.1/", "http://224.0.0.1/",
])
def test_private_loopback_and_link_local_targets_are_refused(url, settings):
    settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(TargetRefused):
        url_check(url)
    with pytest.raises(TargetRefused):
        target_resolve(url)


def test_names_are_checked_after_resolution_and_other_schemes_refused(settings):
    settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    url_check("https://hooks.example.com/x")  # a name: checked when delivering
    with pytest.raises(TargetRefused):
        target_resolve("http://localhost.:9/")  # resolves to loopback
    for url in ("ftp://example.com/", "file:///etc/passwd", "https://user:pw@example.com/"):
        with pytest.raises(TargetRefused):
            url_check(url)
    assert target_resolve("https://93.184.215.14/x").address == "93.184.215.14"
    settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert target_resolve("http://127.0.0.1:8/x").path == "/x"


@pytest.fixture
def ops(ledger_runtime):
    api_key_cache_clear()
    operator = get_user_model().objects.create_superuser("ops", password="x" * 20)
    client = api_client_get_or_create(name="ops", username="ops")
    _, key = api_key_issue(client=client, scopes=["admin", "read"])
    yield Client(headers={"authorization": f"Bearer {key}"}), operator
    api_key_cache_clear()


def test_ops_api_validates_subscriptions_and_shows_the_secret_once(ops):
    client, _ = ops
    refused = client.post("/api/ops/webhooks/", {"name": "x", "url": "http://10.0.0.1/h"},
                          content_type="application/json")
    assert refused.status_code == 422
    assert "url" in refused.json()["details"]["fields"]
    unknown = client.post("/api/ops/webhooks/", {"name": "x", "url": "https://example.com/h",
                                                 "event_types": ["teleport"]},
                          content_type="application/json")
    assert unknown.status_code == 422 and "event_types" in unknown.json()["details"]["fields"]
    created = client.post("/api/ops/webhooks/", {
        "name": "x", "url": "https://example.com/h", "event_types": ["aml.alert", "mint"]},
        content_type="application/json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["event_types"] == ["aml.alert", "mint"]
    listed = client.get("/api/ops/webhooks/").json()["results"]
    assert listed and "secret" not in listed[0]
    paused = client.patch(f"/api/ops/webhooks/{body['id']}/", {"active": False},
                          content_type="application/json")
    assert paused.status_code == 200 and paused.json()["active"] is False


def test_ops_api_is_for_operators(ledger_runtime):
    api_key_cache_clear()
    _, key = api_key_issue(client=api_client_get_or_create(name="integrator"),
                           scopes=["admin"])
    client = Client(headers={"authorization": f"Bearer {key}"})
    assert client.get("/api/ops/webhooks/").status_code == 403
    assert client.post("/api/ops/webhook-deliveries/1/redeliver/").status_code in (403, 404)


def test_admin_shows_the_delivery_log_and_redelivers(ops, receiver, settings):
    _, operator = ops
    subscription = Subscription.objects.create(name="r", url=receiver.url, secret="s" * 32)
    [delivery] = queue(subscription, 1)
    receiver.statuses = [500]
    services.subscription_deliver(subscription_id=subscription.pk)
    browser = Client()
    browser.force_login(operator)
    page = browser.get(f"/admin/webhooks/delivery/{delivery.pk}/change/")
    assert page.status_code == 200 and b"HTTP 500" in page.content
    done = browser.post("/admin/webhooks/delivery/", {
        "action": "redeliver", "_selected_action": [delivery.pk]})
    assert done.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    settings.LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    form = browser.post("/admin/webhooks/subscription/add/", {
        "name": "bad", "url": "http://169.254.169.254/", "secret": "s" * 32,
        "event_types": "[]", "ledger": "", "active": "on"})
    assert form.status_code == 200 and b"link-local" in form.content
