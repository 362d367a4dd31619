"""Ledgers (shards): list, look up, create (admin scope)."""

from django.http import HttpRequest
from ninja import Router, Status

from apiaccess.auth import require_scope
from apiaccess.errors import ApiError
from ledger import services
from ledger.api.execution import shard_get
from ledger.api.responses import with_errors
from ledger.api.schemas import LedgerDetailOut, LedgerIn, LedgerOut
from ledger.models import Ledger
from ledger.writer import WriterError

router = Router(tags=["ledgers"])


@router.get("/ledgers", response=with_errors({200: list[LedgerOut]}),
            auth=require_scope("read"), summary="List ledgers")
def ledger_list(request: HttpRequest):
    return Ledger.objects.all()


@router.get("/ledgers/{code}", response=with_errors({200: LedgerDetailOut}, 404),
            auth=require_scope("read"), summary="A ledger and the head of its log")
def ledger_get(request: HttpRequest, code: str):
    ledger = Ledger.objects.filter(code=code).first()
    if ledger is None:
        raise ApiError(404, "ledger_not_found", f"no ledger {code!r}")
    head_seq, head_hash = shard_get(code).store.head()
    return {"code": ledger.code, "scale": ledger.scale, "created_at": ledger.created_at,
            "head_seq": head_seq, "head_hash": head_hash.hex()}


@router.post("/ledgers", response=with_errors({200: LedgerOut, 201: LedgerOut}, 409),
             auth=require_scope("admin"), summary="Create a ledger (or get the same one)")
def ledger_create(request: HttpRequest, payload: LedgerIn):
    try:
        ledger, created = services.ledger_create(code=payload.code, scale=payload.scale)
    except services.InvalidLedger as exc:
        raise ApiError(422, exc.code, str(exc)) from None
    except services.LedgerConflict as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    except WriterError:
        # Distributed mode: registered, but no writer served the new ledger in time (its
        # writer starts from `ledger_writers`); it takes commands once one does.
        raise ApiError(
            503, "ledger_unavailable",
            "the ledger is registered but its writer is not serving yet; retry later",
        ) from None
    return Status(201 if created else 200, ledger)
