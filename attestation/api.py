"""Checkpoints and proofs API (django-ninja), mounted by `config.api` at /api/v1/.

Who may call what: checkpoints, verifier keys, consistency proofs and `POST proofs/verify`
are public (auth=None): they reveal roots and signatures only, and auditors must be able to
check the log without an account with us. Inclusion proofs and receipts carry an event's
bytes, and balance proofs an account's balances, so they need an API key with the read scope
and the same object permission as reading that event or account through the ledger API.
Proof JSON is served byte-exact as DESIGN section 5 defines it.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from apiaccess.auth import require_scope
from apiaccess.errors import ApiError
from attestation import selectors
from attestation.runtime import SealerBusy
from attestation.sealer import AttestationError
from attestation.store import SealStoreError
from ledger.api.access import account_read_check
from ledger.api.responses import with_errors
from ledger.core.events import event_accounts
from ledger.permissions import account_view_allowed, accounts_view_all
from ledger.runtime import runtime

router = Router(tags=["attestation"])

PUBLIC = None  # ninja: auth=None on an operation means no authentication


# -- schemas (documentation; responses are written byte-exact below) ------------------------------

class CheckpointOut(Schema):
    ledger: str
    origin: str = Field(description="Log identity and key name, e.g. ledgerfs.local/EUR.")
    height: int
    tree_size: int
    root_hash: str = Field(description="Event-tree root, lowercase hex.")
    state_root: str = Field(description="State (Merkle-sum) tree root, lowercase hex.")
    state_sum: int = Field(description="Outstanding liabilities at this checkpoint, minor units.")
    prev_hash: str = Field(description="SHA-256 of the previous checkpoint's signed note.")
    time_ns: int
    note: str = Field(description="The C2SP signed note: the only part to trust.")
    public_key: str = Field(description="Verifier key (Go sumdb/note format) that signed it.")


class KeyOut(Schema):
    ledger: str
    origin: str
    public_key: str
    key_id: str


class KeysOut(Schema):
    keys: list[KeyOut]


class InclusionProofOut(Schema):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    path: list[str]
    root_hash: str


class InclusionOut(InclusionProofOut):
    leaf_data: str = Field(description="The event's canonical bytes, base64.")


class ConsistencyOut(Schema):
    first_size: int
    second_size: int
    first_root: str
    second_root: str
    path: list[str]


class SumPathEntryOut(Schema):
    hash: str
    sum: int


class BalanceProofOut(Schema):
    leaf_index: int
    tree_size: int
    leaf_data: str = Field(description="Canonical JSON of {id, buckets, last_seq}, base64.")
    leaf_sum: int
    path: list[SumPathEntryOut]
    root_hash: str
    root_sum: int


class BalanceOut(Schema):
    ledger: str
    account: str
    height: int
    proof: BalanceProofOut
    checkpoint: CheckpointOut


class ReceiptOut(Schema):
    ledger: str
    event_id: str
    seq: int
    leaf_data: str
    inclusion: InclusionProofOut
    checkpoint: CheckpointOut


class VerifyIn(Schema):
    kind: Literal["receipt", "inclusion", "consistency", "balance"]
    proof: dict[str, Any] = Field(description="Receipt, balance bundle, or bare proof.")
    checkpoint: dict[str, Any] | str | None = Field(
        None, description="For inclusion and consistency: the (newer) signed checkpoint."
    )
    first_checkpoint: dict[str, Any] | str | None = Field(
        None, description="For consistency: the older checkpoint."
    )
    public_key: str | None = Field(
        None, description="Verifier key to trust; default: this server's key for the origin."
    )


class VerifyOut(Schema):
    valid: bool
    summary: str | None = None
    code: str | None = None
    message: str | None = None


# -- helpers --------------------------------------------------------------------------------------

_STATUS = {
    "ledger_not_found": 404, "event_not_found": 404, "not_sealed": 404,
    "verification_request_invalid": 422,
}


def _json(value: object) -> HttpResponse:
    return HttpResponse(orjson.dumps(value), content_type="application/json")


def _answer(read, *args, **kwargs) -> HttpResponse:
    """Run a selector; map attestation failures to the API's error shape."""
    # Like the ledger API, read through this process's ledger runtime (started on first use),
    # so proofs come from the same stores the writers append to.
    runtime()
    try:
        return _json(read(*args, **kwargs))
    except (SealerBusy, SealStoreError) as err:
        raise ApiError(503, "attestation_unavailable", str(err)) from err
    except AttestationError as err:
        raise ApiError(_STATUS.get(err.code, 400), err.code, str(err)) from err


def _event_read_check(request: HttpRequest, event_id: str) -> None:
    """As GET /events/{id}: a user who may not see every account learns nothing about
    events that are not theirs, not even whether they exist."""
    if accounts_view_all(request.user):
        return
    runtime()
    try:
        _, event = selectors.event_locate(event_id)
    except AttestationError:
        raise ApiError(403, "permission_denied", "you may not view this event") from None
    accounts = event_accounts(orjson.loads(event.body))
    if not any(account_view_allowed(request.user, account) for account in accounts):
        raise ApiError(403, "permission_denied", "you may not view this event")


# -- operations -----------------------------------------------------------------------------------

@router.get("/checkpoints/keys", response=with_errors({200: KeysOut}), auth=PUBLIC,
            summary="Checkpoint verifier keys of every ledger")
def checkpoint_keys(request: HttpRequest):
    return _answer(lambda: {"keys": selectors.verifier_keys_list()})


@router.get("/checkpoints/latest", response=with_errors({200: CheckpointOut}, 404),
            auth=PUBLIC, summary="The latest signed checkpoint of a ledger")
def checkpoint_latest(request: HttpRequest, ledger: str):
    return _answer(selectors.checkpoint_get, ledger=ledger)


@router.get("/checkpoints/{height}", response=with_errors({200: CheckpointOut}, 404),
            auth=PUBLIC, summary="The signed checkpoint at a block height")
def checkpoint_at(request: HttpRequest, height: int, ledger: str):
    if height < 1:
        raise ApiError(404, "not_sealed", "heights start at 1")
    return _answer(selectors.checkpoint_get, ledger=ledger, height=height)


@router.get("/proofs/inclusion/{event_id}", response=with_errors({200: InclusionOut}, 404),
            auth=require_scope("read"), summary="Inclusion proof of an event (RFC 9162)")
def proof_inclusion(request: HttpRequest, event_id: str, tree_size: int | None = None):
    _event_read_check(request, event_id)
    return _answer(selectors.inclusion_proof_get, event_id=event_id, tree_size=tree_size)


@router.get("/proofs/consistency", response=with_errors({200: ConsistencyOut}, 404),
            auth=PUBLIC, summary="Consistency proof between two tree sizes (RFC 9162)")
def proof_consistency(request: HttpRequest, ledger: str, first: int, second: int | None = None):
    return _answer(selectors.consistency_proof_get, ledger=ledger, first=first, second=second)


@router.get("/proofs/balance/{account}", response=with_errors({200: BalanceOut}, 404),
            auth=require_scope("read"),
            summary="Balance proof of an account against a checkpoint's state root")
def proof_balance(request: HttpRequest, account: str, height: int | None = None):
    account_read_check(request, account)
    return _answer(selectors.balance_proof_get, account_id=account, height=height)


@router.get("/receipts/{event_id}", response=with_errors({200: ReceiptOut}, 404),
            auth=require_scope("read"),
            summary="Receipt: event bytes, inclusion proof and signed checkpoint")
def receipt(request: HttpRequest, event_id: str):
    _event_read_check(request, event_id)
    return _answer(selectors.receipt_get, event_id=event_id)


@router.post("/proofs/verify", response=with_errors({200: VerifyOut}), auth=PUBLIC,
             summary="Verify a receipt or proof against a signed checkpoint")
def proof_verify(request: HttpRequest, body: VerifyIn):
    return _answer(
        selectors.proof_verify, kind=body.kind, proof=body.proof, checkpoint=body.checkpoint,
        first_checkpoint=body.first_checkpoint, public_key=body.public_key,
    )

