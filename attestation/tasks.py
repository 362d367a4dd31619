"""Celery tasks of attestation: thin, they take ledger codes and call one service.

`seal_ledgers` is the beat entry (every `LEDGERFS_SEAL_INTERVAL_MS`, default 1 s): it seals
every ledger with new events and delivers pending digests. It does not retry itself: the next
tick, a second later, is its retry, and every step resumes from the seal store. `seal_ledger`
(one ledger, e.g. on demand) and `deliver_digests` retry a failing digest sink with
exponential backoff.
"""

from celery import shared_task

from attestation import services
from attestation.runtime import SealerBusy
from attestation.sinks import DigestSinkError


@shared_task(name="attestation.seal_ledgers", ignore_result=True, max_retries=0)
def seal_ledgers(ledgers: list[str] | None = None) -> dict[str, int]:
    return services.ledgers_seal(ledgers=ledgers)


@shared_task(
    name="attestation.seal_ledger", ignore_result=True,
    autoretry_for=(DigestSinkError, SealerBusy), retry_backoff=True, retry_backoff_max=60,
    retry_jitter=True, max_retries=5,
)
def seal_ledger(ledger: str) -> int:
    return len(services.ledger_seal(ledger=ledger))


@shared_task(
    name="attestation.deliver_digests", ignore_result=True,
    autoretry_for=(DigestSinkError,), retry_backoff=True, retry_backoff_max=300,
    retry_jitter=True, max_retries=8,
)
def deliver_digests(ledger: str) -> int:
    return services.digests_deliver(ledger=ledger)
