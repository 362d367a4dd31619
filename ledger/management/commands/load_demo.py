"""Load a small demo ledger so a fresh `make run` shows something real.

Creates a EUR ledger with customers, a merchant, a clearing account and some history (mints,
transfers, a hold partly captured, a fee) through the same command path as the API, plus an
operator login. Refused in production (`LEDGERFS_DEMO` off).
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from ledger import services
from ledger.core.codes import ResultCode
from ledger.core.commands import Command as LedgerCommand
from ledger.core.state import account_id_for
from ledger.models import Ledger

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-ledgerfs"

CUSTOMERS = ("did:example:alice", "did:example:bob", "did:example:carol")
MERCHANT = "did:example:merchant-coffee"
CLEARING = "clearing:eur-usd"


class Command(BaseCommand):
    help = "Load demo data (a EUR ledger with accounts and history) and a demo operator login."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when any ledger exists."
        )

    def handle(self, *args, if_empty: bool = False, **options):
        if not settings.LEDGERFS_DEMO:
            raise CommandError("demo data is disabled (LEDGERFS_DEMO is off)")
        if not (if_empty and Ledger.objects.exists()):
            self._load()
        self._ensure_operator()
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            f"Admin: http://127.0.0.1:{port}/admin/  login: {DEMO_USERNAME} / {DEMO_PASSWORD}"
        )

    def _load(self) -> None:
        ledger, _ = services.ledger_create(code="EUR", scale=2)

        def run(*commands: LedgerCommand) -> None:
            for command in commands:
                command.client = "demo"
            results = services.commands_execute(ledger="EUR", commands=list(commands))
            accepted = (ResultCode.ok, ResultCode.account_already_exists)
            failed = [r.code.name for r in results if r.code not in accepted]
            if failed:
                raise CommandError(f"demo data rejected: {failed}")

        def acc(did: str) -> str:
            return account_id_for("EUR", did)

        run(
            *(LedgerCommand("open_account", f"demo-open-{did}", did=did, tags=["demo"])
              for did in CUSTOMERS),
            LedgerCommand("open_account", "demo-open-merchant", did=MERCHANT, tags=["merchant"]),
            LedgerCommand("open_account", "demo-open-clearing", did=CLEARING, kind="clearing",
                    tags=["eur-usd"]),
        )
        run(
            *(LedgerCommand("mint", f"demo-mint-{did}", account=acc(did), amount=100_00)
              for did in CUSTOMERS),
            LedgerCommand("transfer", "demo-coffee-1", account=acc(CUSTOMERS[0]), to=acc(MERCHANT),
                    amount=3_50, metadata={"memo": "flat white"}),
            LedgerCommand("transfer", "demo-rent-share", account=acc(CUSTOMERS[1]),
                    to=acc(CUSTOMERS[0]), amount=25_00),
            LedgerCommand("fee_transfer", "demo-fee-1", account=acc(MERCHANT), amount=10),
            LedgerCommand("hold", "demo-hold-1", account=acc(CUSTOMERS[2]), amount=40_00,
                    beneficiary=acc(MERCHANT), hold_id="hld_eur_demo_order_1"),
        )
        run(LedgerCommand("release", "demo-release-1", hold_id="hld_eur_demo_order_1",
                    amount=32_00))
        services.ledger_project(ledger=ledger)
        self.stdout.write("Loaded the demo EUR ledger.")

    def _ensure_operator(self) -> None:
        users = get_user_model()
        if not users.objects.filter(username=DEMO_USERNAME).exists():
            users.objects.create_superuser(DEMO_USERNAME, "demo@example.invalid", DEMO_PASSWORD)
