"""`POST /transfers`: a batch of up to 8,000 ledger commands, one result per command.

The body is read by `batch` (see there why not by pydantic); `TransferBatchIn` only documents
it. The response is assembled with orjson around the events' stored bytes: at 1,000 commands
per request this path runs tens of thousands of times a second.
"""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import Router

from apiaccess.auth import command_client, require_scope
from apiaccess.errors import ApiError
from ledger.api.batch import batch_commands, batch_ledger, batch_parse, results_json
from ledger.api.execution import commands_run, shard_get
from ledger.api.responses import with_errors
from ledger.api.schemas import TransferBatchIn, TransferBatchOut, TransferItemIn
from ledger.core.codes import ResultCode
from ledger.permissions import account_view_grant

router = Router(tags=["transfers"])


def _request_body_schema() -> dict:
    # Inline and flat (no $ref), so it needs no entry in the document's components.
    batch = TransferBatchIn.model_json_schema(by_alias=True)
    batch.pop("$defs", None)
    batch["properties"]["transfers"]["items"] = TransferItemIn.model_json_schema(by_alias=True)
    return {"required": True, "content": {"application/json": {"schema": batch}}}


@router.post(
    "/transfers", response=with_errors({200: TransferBatchOut}, 404, 413),
    auth=require_scope("write"), summary="Run a batch of ledger commands",
    openapi_extra={"requestBody": _request_body_schema()},
)
def transfers_create(request: HttpRequest):
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiError(413, "payload_too_large", "the request body is too large") from None
    items, atomic, ledger = batch_parse(body)
    ledger = batch_ledger(items, ledger)
    store = shard_get(ledger).store
    commands = batch_commands(items, command_client(request))
    results = commands_run(ledger, commands, atomic=atomic)
    opened = [
        result.account for command, result in zip(commands, results, strict=True)
        if command.type == "open_account" and result.code == ResultCode.ok
    ]
    if opened:
        account_view_grant(request.user, opened)
    return HttpResponse(results_json(results, store), content_type="application/json")
