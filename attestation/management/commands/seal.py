"""`python manage.py seal [--ledger CODE ...]`: seal now, instead of waiting for the beat."""

from django.core.management.base import BaseCommand, CommandError

from attestation import services
from attestation.runtime import SealerBusy, attestation
from attestation.sealer import AttestationError
from attestation.sinks import DigestSinkError
from ledger.shards import UnknownLedger


class Command(BaseCommand):
    help = "Seal the events committed since the last seal into signed checkpoints, now."

    def add_arguments(self, parser):
        parser.add_argument("--ledger", action="append", dest="ledgers", metavar="CODE",
                            help="ledger to seal (repeatable; default: every ledger)")

    def handle(self, *args, ledgers=None, **options):
        codes = ledgers or attestation().codes()
        if not codes:
            self.stdout.write("no ledgers to seal")
        failed = False
        for code in codes:
            try:
                results = services.ledger_seal(ledger=code)
            except UnknownLedger:
                self.stderr.write(f"{code}: no such ledger")
                failed = True
                continue
            except SealerBusy as err:
                self.stdout.write(f"{code}: {err}; it seals every second on its own")
                continue
            except DigestSinkError as err:
                self.stderr.write(f"{code}: sealed, but a digest sink failed: {err}")
                failed = True
                continue
            except AttestationError as err:
                self.stderr.write(f"{code}: {err} [{err.code}]")
                failed = True
                continue
            head = attestation().reader(code).head()
            sealed = f"sealed {len(results)} block(s)" if results else "nothing new to seal"
            self.stdout.write(
                f"{code}: {sealed}; height {head.height}, tree size {head.tree_size}"
            )
        if failed:
            raise CommandError("sealing failed for some ledgers")
