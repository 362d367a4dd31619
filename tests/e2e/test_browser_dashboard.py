"""The compliance dashboard in headless Chromium (Debian's, driven by Playwright): a staff user
logs in, a transfer is made through the API, and the page shows the transfer and the AML alert
it raised without a reload. The screenshot is kept in test-artifacts/."""

from __future__ import annotations

import shutil
import time

import pytest
from playwright.sync_api import sync_playwright

from tests.support.servers import LiveServer
from tests.support.services import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
LEDGER = "EUR"
USERNAME, PASSWORD = "officer", "a-long-test-password-1"
LARGE = 1_000_000
"""The default large-transfer threshold (minor units)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium "
                    "(requirements-apt.txt)")
    server = LiveServer(tmp_path_factory.mktemp("dashboard")).start()
    server.superuser(USERNAME, PASSWORD)
    yield server
    server.stop()


def test_dashboard_shows_a_transfer_and_its_alert_live(server):
    api = server.api(server.api_key("shop"))
    api.ledger(LEDGER)
    payer, payee = api.open_accounts(LEDGER, ["did:shop:payer", "did:shop:payee"])
    api.commands(LEDGER, [{"type": "mint", "account": payer, "amount": LARGE - 1,
                           "idempotency_key": f"fund-{i}"} for i in range(3)])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}/dashboard/")
            assert "/dashboard/login/" in page.url  # staff login first
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{server.url}/dashboard/")
            page.wait_for_selector('#connection[data-state="live"]', timeout=10_000)
            page.evaluate("window.notReloaded = true")
            assert page.locator('#ledgers tr[data-ledger="EUR"]').count() == 1

            started = time.monotonic()
            [result] = api.commands(LEDGER, [{"from": payer, "to": payee, "amount": LARGE,
                                              "idempotency_key": "the-big-one"}])
            event_id = result["event"]["id"]
            alert = page.wait_for_selector(
                f'#alerts tr[data-event-id="{event_id}"][data-rule="large_transfer"]',
                timeout=5_000)
            alert_seconds = time.monotonic() - started
            page.wait_for_selector(f'#events tr[data-event-id="{event_id}"]', timeout=5_000)

            assert "open" in alert.inner_text()
            assert "10,000.00 EUR" in alert.inner_text()
            row = page.locator(f'#events tr[data-event-id="{event_id}"]').inner_text()
            assert "transfer" in row and "10,000.00 EUR" in row
            assert page.evaluate("window.notReloaded") is True
            assert alert_seconds < 1.0, f"the alert took {alert_seconds:.2f}s to show"
            totals = page.locator('#ledgers tr[data-ledger="EUR"]').inner_text()
            assert f"{3 * (LARGE - 1) // 100:,}" in totals  # outstanding, whole units
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
            api.close()
