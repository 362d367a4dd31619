"""`python manage.py verify_digests [--ledger CODE ...] [--strict]`: live log vs. digests.

Exit status 0 when the live log, the seal store and every digest sink agree, non-zero on any
divergence (and, with --strict, also when a sink lacks a sealed checkpoint).
"""

from django.core.management.base import BaseCommand, CommandError

from attestation import services
from attestation.runtime import attestation

MAX_LINES_PER_KIND = 50


class Command(BaseCommand):
    help = "Compare the live event log with the checkpoints the external digest sinks hold."

    def add_arguments(self, parser):
        parser.add_argument("--ledger", action="append", dest="ledgers", metavar="CODE",
                            help="ledger to verify (repeatable; default: every ledger)")
        parser.add_argument("--strict", action="store_true",
                            help="also fail when a sink lacks a sealed checkpoint")

    def handle(self, *args, ledgers=None, strict=False, **options):
        failing = []
        for code in ledgers or attestation().codes():
            report = services.digests_verify(ledger=code)
            for line in report.divergences[:MAX_LINES_PER_KIND]:
                self.stdout.write(f"DIVERGENCE {code}: {line}")
            if len(report.divergences) > MAX_LINES_PER_KIND:
                self.stdout.write(f"... and {len(report.divergences) - MAX_LINES_PER_KIND} more")
            for line in report.pending[:MAX_LINES_PER_KIND]:
                self.stdout.write(f"PENDING {code}: {line}")
            if report.summary:
                self.stdout.write(report.summary)
            if report.divergences or (strict and report.pending):
                failing.append(code)
            else:
                self.stdout.write(f"OK {code}: the live log matches every digest")
        if failing:
            raise CommandError(f"divergence in {', '.join(failing)}")
