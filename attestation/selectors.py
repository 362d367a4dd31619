"""Attestation reads: checkpoints, verifier keys, proofs, receipts, and proof verification.

Everything comes from the shard's seal store (through this process's sealer or a secondary
view) and its event store, never from the read models, so a proof and the checkpoint it is
checked against always come from one sealed head. Shapes are DESIGN section 5's; hex is
lowercase, event bytes are base64 of the canonical body.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from attestation.keys import origin_for, signing_key_get
from attestation.runtime import attestation
from attestation.sealer import AttestationError, NotSealed
from attestation.store import CheckpointRecord
from ledger.core.chain import StoredEvent
from ledger.core.state import ledger_tag
from ledger.shards import UnknownLedger, valid_ledger_code
from proofs import verify as offline
from proofs.core.checkpoint import Checkpoint
from proofs.core.errors import ProofError
from proofs.core.note import verify_note


class EventNotFound(AttestationError):
    code = "event_not_found"


class LedgerNotFound(AttestationError):
    code = "ledger_not_found"


def checkpoint_json(ledger: str, record: CheckpointRecord) -> dict:
    """A checkpoint for API clients: the signed note, its key, and its fields spelled out."""
    checkpoint = Checkpoint.parse(verify_note(record.note, record.public_key))
    return {
        "ledger": ledger,
        "origin": checkpoint.origin,
        "height": checkpoint.height,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash.hex(),
        "state_root": checkpoint.state_root.hex(),
        "state_sum": checkpoint.state_sum,
        "prev_hash": checkpoint.prev_hash.hex(),
        "time_ns": checkpoint.time_ns,
        "note": record.note,
        "public_key": record.public_key,
    }


def _reader(ledger: str):
    if not valid_ledger_code(ledger):
        raise LedgerNotFound(f"no ledger {ledger!r}")
    try:
        attestation().event_store(ledger)
        return attestation().reader(ledger)
    except UnknownLedger:
        raise LedgerNotFound(f"no ledger {ledger!r}") from None


def checkpoint_get(*, ledger: str, height: int | None = None) -> dict:
    """The checkpoint at `height`, or the latest one."""
    return checkpoint_json(ledger, _reader(ledger).checkpoint(height))


def verifier_keys_list() -> list[dict]:
    """Every ledger's checkpoint verifier key (generated on first use where this process
    seals; elsewhere only keys that exist)."""
    owns = attestation().owns_shards
    keys = []
    for code in attestation().codes():
        key = signing_key_get(ledger=code, create=owns)
        if key is not None:
            keys.append({
                "ledger": code, "origin": key.origin, "public_key": key.verifier,
                "key_id": key.verifier.split("+")[1],
            })
    return keys


def event_locate(event_id: str) -> tuple[str, StoredEvent]:
    """(ledger, stored event) of an event id (`evt_<ledger>_...`)."""
    tag = ledger_tag(event_id) if isinstance(event_id, str) else None
    ledger = tag.upper() if tag else ""
    if not valid_ledger_code(ledger):
        raise EventNotFound(f"no event {event_id!r}")
    try:
        store = attestation().event_store(ledger)
    except UnknownLedger:
        raise EventNotFound(f"no event {event_id!r}") from None
    seq = store.seq_of_event(event_id)
    event = store.get(seq) if seq is not None else None
    if event is None:
        raise EventNotFound(f"no event {event_id!r}")
    return ledger, event


def inclusion_proof_get(*, event_id: str, tree_size: int | None = None) -> dict:
    """DESIGN 5 inclusion proof of the event at `tree_size` (default: the latest sealed size),
    plus the event's canonical bytes as `leaf_data` (base64)."""
    ledger, event = event_locate(event_id)
    proof = _reader(ledger).inclusion_proof(event.seq, tree_size)
    return {**proof, "leaf_data": base64.b64encode(event.body).decode()}


def consistency_proof_get(*, ledger: str, first: int, second: int | None = None) -> dict:
    return _reader(ledger).consistency_proof(first, second)


def balance_proof_get(*, account_id: str, height: int | None = None) -> dict:
    """The account's state leaf and Merkle-sum path against the state root of checkpoint
    `height` (default: latest), with that checkpoint: verifiable on its own."""
    tag = ledger_tag(account_id)
    ledger = tag.upper() if tag else ""
    reader = _reader(ledger)
    height, proof = reader.balance_proof(account_id, height)
    return {
        "ledger": ledger, "account": account_id, "height": height, "proof": proof,
        "checkpoint": checkpoint_json(ledger, reader.checkpoint(height)),
    }


def receipt_get(*, event_id: str) -> dict:
    """A self-contained receipt: the event's bytes, its inclusion proof and the signed
    checkpoint of the latest seal, checkable offline with only the ledger's public key."""
    ledger, event = event_locate(event_id)
    reader = _reader(ledger)
    head = reader.head()
    if event.seq >= head.tree_size:
        raise NotSealed(f"event {event_id} is not sealed yet; retry in a second")
    return {
        "ledger": ledger,
        "event_id": event_id,
        "seq": event.seq,
        "leaf_data": base64.b64encode(event.body).decode(),
        "inclusion": reader.inclusion_proof(event.seq, head.tree_size),
        "checkpoint": checkpoint_json(ledger, reader.checkpoint(head.height)),
    }


class VerificationRequestInvalid(AttestationError):
    code = "verification_request_invalid"


def _server_key(checkpoint: object) -> str:
    """This server's verifier key for the origin a checkpoint names."""
    note = offline.note_of(checkpoint)
    origin = note.split("\n", 1)[0]
    ledger = origin.rsplit("/", 1)[-1]
    key = signing_key_get(ledger=ledger, create=False) if valid_ledger_code(ledger) else None
    if key is None or origin_for(ledger) != origin:
        raise VerificationRequestInvalid(f"this server has no key for origin {origin!r}")
    return key.verifier


def proof_verify(
    *, kind: str, proof: object, checkpoint: object = None, first_checkpoint: object = None,
    public_key: str | None = None,
) -> dict:
    """Verify a receipt, balance bundle, inclusion or consistency proof as the offline
    verifier does; returns {"valid": true, "summary"} or {"valid": false, "code", "message"}.
    The key is `public_key` if given, else this server's key for the checkpoint's origin."""
    try:
        if kind in ("receipt", "balance"):
            if not isinstance(proof, Mapping):
                raise VerificationRequestInvalid(f"a {kind} must be an object")
            checkpoint = proof.get("checkpoint")
        if checkpoint is None:
            raise VerificationRequestInvalid(f"verifying a {kind} proof needs a checkpoint")
        key = public_key or _server_key(checkpoint)
        if kind == "receipt":
            summary = offline.verify_receipt(proof, key)
        elif kind == "balance":
            summary = offline.verify_balance(proof, key)
        elif kind == "inclusion":
            summary = offline.verify_inclusion_against(proof, checkpoint, key)
        elif kind == "consistency":
            if first_checkpoint is None:
                raise VerificationRequestInvalid("a consistency proof needs first_checkpoint")
            summary = offline.verify_consistency(first_checkpoint, checkpoint, proof, key)
        else:
            raise VerificationRequestInvalid(f"unknown kind {kind!r}")
    except ProofError as err:
        return {"valid": False, "code": err.code, "message": str(err)}
    except offline.UnusableInput as err:
        raise VerificationRequestInvalid(str(err)) from err
    return {"valid": True, "summary": summary}
