"""Accounts: create on first use by DID, read one; balances now or as of a seq or time."""

from __future__ import annotations

import hashlib

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import AwareDatetime, Field

from apiaccess.auth import command_client, require_scope
from apiaccess.errors import ApiError
from ledger.api.access import account_read_check
from ledger.api.execution import commands_run, ledger_of_id, rejection_error, shard_get
from ledger.api.reads import account_view, balance_at, balance_now, point_resolve
from ledger.api.responses import with_errors
from ledger.api.schemas import AccountBalancesOut, AccountIn, AccountOut
from ledger.api.timestamps import datetime_to_ns
from ledger.core.codes import ResultCode
from ledger.core.commands import Command
from ledger.core.state import account_id_for
from ledger.permissions import account_view_grant

router = Router(tags=["accounts"])

R = ResultCode


def _open_key(did: str) -> str:
    return "open_account:" + hashlib.sha256(did.encode()).hexdigest()[:40]


@router.post("/accounts", response=with_errors({200: AccountOut, 201: AccountOut}, 404, 409),
             auth=require_scope("write"), summary="Open an account, or get the one of this DID")
def account_create(request: HttpRequest, payload: AccountIn):
    store = shard_get(payload.ledger).store
    command = Command(
        "open_account", payload.idempotency_key or _open_key(payload.did),
        command_client(request), did=payload.did, kind=payload.kind, tags=payload.tags,
        safeguarding=payload.safeguarding,
    )
    [result] = commands_run(payload.ledger, [command])
    if result.code == R.ok:
        account_id = result.account
        # The client that opened an account may read it back.
        account_view_grant(request.user, [account_id])
        status = 200 if result.replayed else 201
    elif result.code == R.account_already_exists or (
        # With the derived key, a conflict means the same DID sent with other attributes.
        result.code == R.idempotency_key_reused_with_different_request
        and payload.idempotency_key is None
    ):
        account_id = account_id_for(payload.ledger, payload.did)
        account_read_check(request, account_id)
        status = 200
    else:
        raise rejection_error(result)
    view = account_view(store, account_id)
    if view is None:
        raise ApiError(404, "account_not_found", f"no account {account_id!r}")
    return Status(status, view)


@router.get("/accounts/{account_id}", response=with_errors({200: AccountOut}, 404),
            auth=require_scope("read"), summary="An account with its current balances")
def account_get(request: HttpRequest, account_id: str):
    account_read_check(request, account_id)
    ledger = ledger_of_id(account_id)
    view = account_view(shard_get(ledger).store, account_id) if ledger else None
    if view is None:
        raise ApiError(404, "account_not_found", f"no account {account_id!r}")
    return view


class BalanceQuery(Schema):
    account: str | None = Field(None, description="Account id; or give ledger and did.")
    ledger: str | None = None
    did: str | None = None
    as_of: AwareDatetime | None = Field(None, description="RFC 3339 time: state at that time.")
    as_of_seq: int | None = Field(None, ge=0, le=2**63 - 1,
                                  description="State right after this seq.")


@router.get("/balances", response=with_errors({200: AccountBalancesOut}, 404),
            auth=require_scope("read"), summary="Balances now, or as of a time or seq")
def balance_get(request: HttpRequest, query: Query[BalanceQuery]):
    if query.as_of is not None and query.as_of_seq is not None:
        raise ApiError(422, "request_invalid", "give as_of or as_of_seq, not both")
    account_id, ledger = balance_account(query.account, query.ledger, query.did)
    account_read_check(request, account_id)
    if ledger is None:
        raise ApiError(404, "account_not_found", f"no account {account_id!r}")
    store = shard_get(ledger).store
    if query.as_of is None and query.as_of_seq is None:
        state, seq = balance_now(store, account_id)
    else:
        as_of_ns = datetime_to_ns(query.as_of) if query.as_of is not None else None
        seq = point_resolve(store, as_of_seq=query.as_of_seq, as_of_ns=as_of_ns)
        state = balance_at(store, account_id, seq)
    if state is None:
        raise ApiError(404, "account_not_found", f"no account {account_id!r} at seq {seq}",
                       {"seq": seq})
    return balance_body(account_id, ledger, state, seq)


def balance_account(
    account: str | None, ledger: str | None, did: str | None
) -> tuple[str, str | None]:
    """(account id, ledger) a balance query names; the ledger is None when the id names none."""
    if account is not None:
        return account, ledger or ledger_of_id(account)
    if ledger is not None and did is not None:
        return account_id_for(ledger, did), ledger
    raise ApiError(422, "account_required", "give account, or ledger and did")


def balance_body(account_id: str, ledger: str, state: dict, seq: int) -> dict:
    """`AccountBalancesOut` of a `balance_now` / `balance_at` state."""
    return {"account": account_id, "ledger": ledger, **state, "seq": seq}
