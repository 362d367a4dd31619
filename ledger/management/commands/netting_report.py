"""`manage.py netting_report [--ledger CODE ...] [--batch ID] [--json]`: clearing positions per
netting batch, and whether each batch nets to zero (see `ledger.clearing`). Exits with status 1
when a batch does not."""

import json

from django.core.management.base import BaseCommand, CommandError

from ledger.clearing import netting_report
from ledger.runtime import runtime


class Command(BaseCommand):
    help = "Report clearing positions per netting batch; fail if one does not net to zero."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--ledger", action="append", dest="ledgers",
                            help="a ledger to include (repeatable); default: all")
        parser.add_argument("--batch", help="only this netting_batch_id")
        parser.add_argument("--json", action="store_true", help="one JSON object")

    def handle(self, *args, ledgers: list[str] | None, batch: str | None, json: bool,
               **options) -> None:
        codes = ledgers or runtime().shards.codes()
        batches = netting_report(ledgers=codes, netting_batch_id=batch)
        unbalanced = [b.netting_batch_id for b in batches if not b.balanced]
        if json:
            self.stdout.write(_dumps({"ledgers": codes, "batches": [b.as_dict() for b in batches],
                                      "unbalanced": unbalanced}))
        else:
            for item in batches:
                state = "nets to zero" if item.balanced else f"OFF BY {item.net}"
                self.stdout.write(f"batch {item.netting_batch_id}: {item.transfers} clearing "
                                  f"transfers, {state}")
                for (ledger, counterparty), amount in sorted(item.positions.items()):
                    self.stdout.write(f"  {ledger} clearing[{counterparty}] {amount:+d}")
        if unbalanced:
            raise CommandError(f"{len(unbalanced)} batch(es) do not net to zero: "
                               f"{', '.join(unbalanced)}")


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
