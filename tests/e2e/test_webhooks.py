"""Webhooks end to end: a running server (its monitor queues the deliveries), a real Celery
worker over Redis (it POSTs them), and a local receiver that verifies each signature with the
recipe of docs/webhooks.md, answers 500 at first, and sees the retries and the order."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.servers import LiveServer
from tests.support.services import ROOT, wait_for

LEDGER = "EUR"
SECRET = "whsec_test-receiver-secret-0123456789"
BACKOFF_MS = 300


def verify(secret: str, header: str, body: bytes, tolerance_seconds: int = 300) -> bool:
    """docs/webhooks.md, "Verifying a delivery", verbatim."""
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)


class Receiver:
    """Records every POST; answers 500 to the first `failures` ones, 200 afterwards."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = 500 if len(receiver.requests) < receiver.failures else 200
                    receiver.requests.append({
                        "at": time.monotonic(), "status": status, "body": json.loads(body),
                        "verified": verify(SECRET, self.headers["LedgerFS-Signature"], body),
                        "tampered": verify(SECRET, self.headers["LedgerFS-Signature"],
                                           body + b" "),
                        "delivery": self.headers["LedgerFS-Delivery"],
                        "attempt": int(self.headers["LedgerFS-Attempt"]),
                        "type": self.headers["LedgerFS-Event-Type"],
                    })
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ledgerfs"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["status"] == 200]

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("webhooks")
    server = LiveServer(directory, redis=True,
                        LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS="1",
                        LEDGERFS_WEBHOOK_BACKOFF_MS=str(BACKOFF_MS),
                        LEDGERFS_WEBHOOK_MAX_ATTEMPTS="5")
    worker = None
    try:
        server.start()
        server.superuser("officer", "a-long-test-password-1")
        log = directory / "worker.log"
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel",
             "INFO"], cwd=ROOT, env=server.env, stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: "ready" in log.read_text(), 30, "the Celery worker")
        yield server, log
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(15)
        server.stop()


def test_signed_deliveries_in_order_with_retries_through_a_celery_worker(stack):
    server, worker_log = stack
    receiver = Receiver(failures=2)
    # The ops API needs the webhooks app's model permissions: the key acts as a superuser.
    operator = server.api(server.api_key("ops", user="officer"))
    try:
        reply = operator.client.post("/api/ops/webhooks/", json={
            "name": "receiver", "url": receiver.url, "secret": SECRET,
            "event_types": ["transfer", "aml.alert"]})
        assert reply.status_code == 201, reply.text
        subscription = reply.json()
        assert subscription["secret"] == SECRET
        assert "secret" not in operator.client.get(
            f"/api/ops/webhooks/{subscription['id']}/").json()

        operator.ledger(LEDGER)
        payer, payee = operator.open_accounts(LEDGER, ["did:hook:payer", "did:hook:payee"])
        # Funded in mints below every AML threshold (so they raise no alert).
        operator.commands(LEDGER, [{"type": "mint", "account": payer, "amount": 400_000,
                                    "idempotency_key": f"fund-{i}"} for i in range(3)])
        results = operator.commands(LEDGER, [
            {"from": payer, "to": payee, "amount": amount, "idempotency_key": f"pay-{i}"}
            for i, amount in enumerate((10, 20, 1_000_000, 30))])
        seqs = [r["event"]["seq"] for r in results]
        # Four transfers, and the two alerts of the large one (default thresholds: a large
        # transfer, and a large inflow into a new account).
        wait_for(lambda: len(receiver.accepted()) >= 6, 30, "six accepted deliveries")

        first, second, third = receiver.requests[:3]
        # The first delivery failed twice and was retried after the backoff, before any other.
        assert [(r["delivery"], r["attempt"], r["status"]) for r in (first, second, third)] \
            == [(first["delivery"], 1, 500), (first["delivery"], 2, 500),
                (first["delivery"], 3, 200)]
        assert second["at"] - first["at"] >= BACKOFF_MS / 1000 * 0.9
        assert third["at"] - second["at"] >= 2 * BACKOFF_MS / 1000 * 0.9
        accepted = receiver.accepted()
        assert [(r["type"], r["body"]["seq"]) for r in accepted] == [
            ("transfer", seqs[0]), ("transfer", seqs[1]), ("transfer", seqs[2]),
            ("aml.alert", seqs[2]), ("aml.alert", seqs[2]), ("transfer", seqs[3])]
        assert all(r["verified"] and not r["tampered"] for r in receiver.requests)
        alerts = {(a["rule"], a["account"], a["status"])
                  for a in (r["body"]["alert"] for r in accepted[3:5])}
        assert alerts == {("large_transfer", payer, "open"),
                          ("new_account_inflow", payee, "open")}
        assert accepted[0]["body"]["event"]["id"] == results[0]["event"]["id"]

        # The worker records a run's attempts when the run ends, after the receiver saw them.
        def recorded() -> dict[str, dict] | None:
            log = operator.client.get("/api/ops/webhook-deliveries/",
                                      params={"subscription": subscription["id"]}).json()
            by_id = {str(d["id"]): d for d in log["results"]}
            done = len(by_id) == 6 and all(d["status"] == "delivered" for d in by_id.values())
            return by_id if done else None

        by_id = wait_for(recorded, 15, "six deliveries recorded as delivered", interval=0.2)
        retried = by_id[first["delivery"]]
        assert retried["status"] == "delivered" and retried["attempts"] == 3
        assert [a["status_code"] for a in sorted(retried["log"], key=lambda a: a["number"])] \
            == [500, 500, 200]

        # Manual redelivery: the same delivery again, signed afresh.
        before = len(receiver.requests)
        reply = operator.client.post(f"/api/ops/webhook-deliveries/{first['delivery']}/redeliver/")
        assert reply.status_code == 200, reply.text
        wait_for(lambda: len(receiver.requests) > before, 15, "the redelivery")
        again = receiver.requests[before]
        assert (again["delivery"], again["attempt"], again["verified"]) == (
            first["delivery"], 1, True)
        assert again["body"] == first["body"]
        assert "webhooks.deliver" in worker_log.read_text()
    finally:
        operator.close()
        receiver.stop()
