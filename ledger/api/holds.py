"""Holds: place, release (all or part), cancel. Thin conveniences over the command path:
each call is one command, and a rejection is an HTTP error carrying the result code."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Router

from apiaccess.auth import command_client, require_scope
from apiaccess.errors import ApiError
from ledger.api.eventjson import result_event, stored_event_json
from ledger.api.execution import commands_run, ledger_of_id, rejection_error, shard_get
from ledger.api.responses import with_errors
from ledger.api.schemas import HoldCancelIn, HoldCommandOut, HoldIn, HoldReleaseIn
from ledger.api.timestamps import datetime_to_ns
from ledger.core.codes import ResultCode
from ledger.core.commands import Command
from ledger.core.machine import Result
from ledger.eventstore.port import EventStore

router = Router(tags=["holds"])

_HOLD_STATUS_AFTER = {"hold": "open", "release": "released", "hold_cancelled": "cancelled"}


def _hold_of_event(body: dict[str, Any]) -> dict[str, Any]:
    """The hold as the event leaves it: every hold event's first leg is the holder's `held`."""
    first_leg = body["legs"][0]
    details = body["details"]
    hold = {
        "id": body["refs"]["hold_id"], "account": first_leg["account"],
        "amount": abs(first_leg["amount"]), "status": _HOLD_STATUS_AFTER[body["type"]],
        "beneficiary": details.get("beneficiary"),
    }
    if body["type"] == "hold":
        hold["amount"] = body["legs"][1]["amount"]
        hold["expires_at"] = details.get("expires_at")
    if "captured" in details:
        hold["captured"] = details["captured"]
    return hold


def _run(ledger: str, command: Command, created_status: int) -> HttpResponse:
    store: EventStore = shard_get(ledger).store
    [result] = commands_run(ledger, [command])
    if result.code != ResultCode.ok:
        raise rejection_error(result)
    return _respond(result, store, 200 if result.replayed else created_status)


def _respond(result: Result, store: EventStore, status: int) -> HttpResponse:
    event = result_event(result, store)
    payload = {
        "hold": _hold_of_event(orjson.loads(event.body)), "replayed": result.replayed,
        "event": stored_event_json(event),
    }
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def _hold_ledger(hold_id: str, ledger: str | None) -> str:
    ledger = ledger or ledger_of_id(hold_id)
    if ledger is None:
        raise ApiError(422, "ledger_required", "this hold id names no ledger; give \"ledger\"")
    return ledger


@router.post("/holds", response=with_errors({200: HoldCommandOut, 201: HoldCommandOut}, 404, 409),
             auth=require_scope("write"), summary="Place a hold on an account's funds")
def hold_create(request: HttpRequest, payload: HoldIn):
    ledger = ledger_of_id(payload.account)
    if ledger is None:
        raise ApiError(404, "account_not_found", f"no account {payload.account!r}")
    command = Command(
        "hold", payload.idempotency_key, command_client(request), account=payload.account,
        beneficiary=payload.beneficiary, amount=payload.amount, hold_id=payload.hold_id,
        expires_at=datetime_to_ns(payload.expires_at) if payload.expires_at else None,
        metadata=payload.metadata,
    )
    return _run(ledger, command, 201)


@router.post("/holds/{hold_id}/release",
             response=with_errors({200: HoldCommandOut}, 404, 409),
             auth=require_scope("write"), summary="Release a hold: capture all or part of it")
def hold_release(request: HttpRequest, hold_id: str, payload: HoldReleaseIn):
    command = Command(
        "release", payload.idempotency_key, command_client(request), hold_id=hold_id,
        beneficiary=payload.beneficiary, amount=payload.amount, metadata=payload.metadata,
    )
    return _run(_hold_ledger(hold_id, payload.ledger), command, 200)


@router.post("/holds/{hold_id}/cancel", response=with_errors({200: HoldCommandOut}, 404, 409),
             auth=require_scope("write"), summary="Cancel a hold: all funds back to the holder")
def hold_cancel(request: HttpRequest, hold_id: str, payload: HoldCancelIn):
    command = Command(
        "cancel_hold", payload.idempotency_key, command_client(request), hold_id=hold_id,
        metadata=payload.metadata,
    )
    return _run(_hold_ledger(hold_id, payload.ledger), command, 200)
