"""Attestation services: seal, record the read models, deliver and verify external digests.

`ledger_seal` is what the periodic task, `manage.py seal` and tests call: it seals the events
committed since the last seal (several blocks if there is a backlog), copies the new blocks
and checkpoints into the read models, then delivers every undelivered checkpoint to every
configured digest sink. Each step catches up from the seal store, so a step that failed (a
database hiccup, a sink outage) is completed by the next call; nothing is lost or duplicated.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from itertools import islice

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from attestation.keys import signing_key_get
from attestation.models import Block, Checkpoint, DigestDelivery
from attestation.runtime import SealerBusy, attestation
from attestation.sealer import NotSealed, SealReader, SealResult, header_hash
from attestation.sinks import (
    DigestAlreadyWritten,
    DigestConflict,
    DigestSinkError,
    configured_sinks,
)
from proofs.audit import LogAudit
from proofs.core.checkpoint import open_checkpoint
from proofs.core.errors import ProofError

log = logging.getLogger(__name__)

SEAL_TIME_BUDGET_SECONDS = 5.0
"""One `ledger_seal` call stops starting new blocks after this long (a backlog is sealed by
the next calls), so a periodic task never runs for long."""

SINK_ATTEMPTS = 3
SINK_BACKOFF_SECONDS = 0.2
DELIVERIES_PER_CALL = 1_000
READ_MODEL_CHUNK = 500
_AUDIT_CHUNK = 4_096


def ledger_seal(*, ledger: str) -> list[SealResult]:
    """Seal what `ledger` committed since its last seal; record and deliver the checkpoints."""
    sealer = attestation().sealer(ledger)
    results: list[SealResult] = []
    deadline = time.monotonic() + SEAL_TIME_BUDGET_SECONDS
    while time.monotonic() < deadline:
        result = sealer.seal()
        if result is None:
            break
        results.append(result)
        log.debug("sealed %s height %d (tree size %d)", ledger, result.header["height"],
                  result.header["tree_size"])
    blocks_record(ledger=ledger, reader=sealer)
    digests_deliver(ledger=ledger, reader=sealer)
    return results


def ledgers_seal(*, ledgers: list[str] | None = None) -> dict[str, int]:
    """Seal every ledger (or those named) that has new events; returns blocks per ledger.

    A failure in one ledger is logged and does not stop the others; the next call retries it.
    """
    sealed: dict[str, int] = {}
    for code in ledgers if ledgers is not None else attestation().codes():
        try:
            sealed[code] = len(ledger_seal(ledger=code))
        except SealerBusy:
            # Another process of the pool holds this shard's seal store and seals it.
            log.debug("ledger %s is sealed by another process", code)
        except DigestSinkError as err:
            log.warning("ledger %s sealed, digest delivery pending: %s", code, err)
        except Exception:
            log.exception("sealing ledger %s failed; the next run retries", code)
    return sealed


def blocks_record(*, ledger: str, reader: SealReader) -> int:
    """Copy blocks and checkpoints the read models lack from the seal store."""
    last = Block.objects.filter(ledger=ledger).aggregate(last=Max("height"))["last"] or 0
    head = reader.head()
    count = 0
    heights = iter(range(last + 1, head.height + 1))
    while chunk := list(islice(heights, READ_MODEL_CHUNK)):
        blocks, checkpoints = [], []
        for height in chunk:
            header = reader.block(height)
            record = reader.checkpoint(height)
            created_at = dt.datetime.fromtimestamp(header["time_ns"] / 1e9, tz=dt.UTC)
            blocks.append(Block(
                ledger=ledger, height=height, first_seq=header["first_seq"],
                last_seq=header["last_seq"], block_root=header["block_root"],
                tree_size=header["tree_size"], tree_root=header["tree_root"],
                state_root=header["state_root"], state_sum=header["state_sum"],
                prev_header_hash=header["prev_header_hash"],
                header_hash=header_hash(header).hex(), created_at=created_at,
            ))
            checkpoints.append(Checkpoint(
                ledger=ledger, height=height, tree_size=header["tree_size"],
                root_hash=header["tree_root"], state_root=header["state_root"],
                state_sum=header["state_sum"], note=record.note, public_key=record.public_key,
                created_at=created_at,
            ))
        with transaction.atomic():
            Block.objects.bulk_create(blocks, ignore_conflicts=True)
            Checkpoint.objects.bulk_create(checkpoints, ignore_conflicts=True)
        count += len(chunk)
    return count


def digests_deliver(*, ledger: str, reader: SealReader | None = None) -> int:
    """Deliver the ledger's undelivered checkpoints to every sink; returns how many.

    Each sink is tried `SINK_ATTEMPTS` times with backoff, then left for the next call
    (its status row says why). Raises `DigestSinkError` if some sink is failing, so a task
    can retry with its own backoff; a conflict is logged and never retried automatically.
    """
    reader = reader or attestation().reader(ledger)
    head_height = reader.head().height
    delivered = 0
    failing: list[str] = []
    for sink in configured_sinks():
        status, _ = DigestDelivery.objects.get_or_create(ledger=ledger, sink=sink.name)
        if status.status == DigestDelivery.Status.CONFLICT:
            continue
        last = min(head_height, status.delivered_height + DELIVERIES_PER_CALL)
        if last <= status.delivered_height:
            continue  # up to date: no write to the database on every tick
        for height in range(status.delivered_height + 1, last + 1):
            note = reader.checkpoint(height).note
            try:
                _deliver(sink, ledger, height, note)
            except DigestSinkError as err:
                status.status = DigestDelivery.Status.FAILING
                status.failures += 1
                status.last_error = str(err)
                failing.append(f"{sink.name}: {err}")
                log.warning("digest sink %s: %s height %d not delivered: %s", sink.name,
                            ledger, height, err)
                break
            except DigestConflict as err:
                status.status = DigestDelivery.Status.CONFLICT
                status.last_error = str(err)
                log.critical("digest sink %s: %s", sink.name, err)
                break
            status.delivered_height = height
            status.status = DigestDelivery.Status.OK
            status.failures = 0
            status.last_error = ""
            status.delivered_at = timezone.now()
            delivered += 1
        status.last_attempt_at = timezone.now()
        status.save()
    if failing:
        raise DigestSinkError("; ".join(failing))
    return delivered


def _deliver(sink, ledger: str, height: int, note: str) -> None:
    for attempt in range(SINK_ATTEMPTS):
        try:
            sink.put(ledger, height, note)
            return
        except DigestAlreadyWritten:
            # Delivered before (a crash between writing and recording), or rewritten by
            # someone else: only identical content counts as delivered.
            stored = sink.versions(ledger, height)
            if stored and all(version == note for version in stored):
                return
            raise DigestConflict(
                f"{sink.name} already holds a different checkpoint for {ledger} height "
                f"{height}; it is never overwritten: investigate with manage.py verify_digests"
            ) from None
        except DigestSinkError:
            if attempt + 1 == SINK_ATTEMPTS:
                raise
            time.sleep(SINK_BACKOFF_SECONDS * 2**attempt)


@dataclass
class DigestReport:
    """What `digests_verify` found: divergences fail verification; pending ones do not."""

    ledger: str
    divergences: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    summary: str = ""


def digests_verify(*, ledger: str) -> DigestReport:
    """Compare the live log of `ledger` with the seal store and every digest sink.

    Recomputes, from the event store's bytes alone, every event hash and the chain, and the
    event-tree and state-tree roots at each checkpoint any sink or the seal store holds; checks
    every stored checkpoint's signature, that sinks and seal store agree height by height, and
    that no sink holds a second version of a checkpoint.
    """
    report = DigestReport(ledger)
    key = signing_key_get(ledger=ledger, create=False)
    if key is None:
        report.divergences.append(f"ledger {ledger} has no signing key: nothing was sealed")
        return report
    try:
        reader = attestation().reader(ledger)
        head = reader.head()
    except NotSealed:
        head, reader = None, None
    local: dict[int, str] = {}
    if reader is not None and head is not None:
        local = {height: reader.checkpoint(height).note for height in range(1, head.height + 1)}
    notes = dict.fromkeys(local.values())  # every distinct checkpoint, in order
    for sink in configured_sinks():
        try:
            held = sink.heights(ledger)
        except DigestSinkError as err:
            report.divergences.append(f"sink {sink.name} cannot be read: {err}")
            continue
        for height in sorted(set(local) - set(held)):
            report.pending.append(f"sink {sink.name} lacks height {height}")
        for height in held:
            versions = sink.versions(ledger, height)
            where = f"sink {sink.name} height {height}"
            if len(set(versions)) > 1:
                report.divergences.append(f"{where}: {len(versions)} different versions stored")
            for note in versions:
                if height not in local:
                    report.divergences.append(f"{where}: the seal store has no such height")
                elif note != local[height]:
                    report.divergences.append(f"{where}: differs from the sealed checkpoint")
                notes.setdefault(note, None)
    checkpoints = []
    for note in notes:
        try:
            checkpoints.append((note, open_checkpoint(note, key.verifier)))
        except ProofError as err:
            report.divergences.append(f"a stored checkpoint does not verify: {err}")
    audit = LogAudit(checkpoints)
    events = attestation().event_store(ledger).read()
    while chunk := list(islice(events, _AUDIT_CHUNK)):
        for event in chunk:
            audit.add(event.seq, event.body, event.hash)
    report.divergences += [str(finding) for finding in audit.finish()]
    report.summary = (
        f"{ledger}: {audit.events} events re-hashed, {audit.checked_checkpoints} checkpoint "
        f"checks against recomputed roots, {len(local)} sealed heights, "
        f"{len(configured_sinks())} sink(s)"
    )
    return report
