"""`python manage.py export_log --ledger CODE > log.jsonl`: the event log for auditors.

One JSON object per line, in seq order: {"seq": n, "body": base64 of the event's canonical
bytes, "hash": chain hash as lowercase hex}. `python -m proofs.verify log` checks such a file
against signed checkpoints (docs/verification.md).
"""

import base64

import orjson
from django.core.management.base import BaseCommand, CommandError

from attestation.runtime import attestation
from ledger.shards import UnknownLedger


class Command(BaseCommand):
    help = "Export a ledger's event log as JSON lines {seq, body, hash} for offline auditing."

    def add_arguments(self, parser):
        parser.add_argument("--ledger", required=True, metavar="CODE")
        parser.add_argument("--after-seq", type=int, default=-1,
                            help="export only events after this seq")

    def handle(self, *args, ledger, after_seq, **options):
        try:
            store = attestation().event_store(ledger)
        except UnknownLedger:
            raise CommandError(f"no ledger {ledger!r}") from None
        for event in store.read(after_seq):
            self.stdout.write(orjson.dumps({
                "seq": event.seq, "body": base64.b64encode(event.body).decode(),
                "hash": event.hash.hex(),
            }).decode())
