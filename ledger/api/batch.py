"""A `POST /transfers` body to core commands, and results back to JSON.

The body is parsed here, not by pydantic: one malformed item must not fail a whole batch of
thousands, so each item becomes a `Command` as given and the state machine rejects what is
malformed with a per-item result code (a zero amount gets `amount_must_be_positive`, a text
amount too). Values are only normalised where the core could not otherwise reject them safely:
a non-string `type` or `kind`, and RFC 3339 expiry times (to nanoseconds).
Only what makes the batch itself unusable is an HTTP error: a body that is not JSON (400), not
an object with a `transfers` list (422), or longer than `MAX_BATCH_COMMANDS` items (413).

The common shapes of a body take a native path (`ledger/api/_batchjson.c`): `batch_rows` reads
it straight into the bus's command rows, `results_json` writes the response; this module's
Python is what they are checked against and what answers everything else.
"""

from __future__ import annotations

from typing import Any

import orjson

from apiaccess.errors import ApiError
from ledger.api import _batchjson
from ledger.api.eventjson import result_event_json
from ledger.api.execution import ledger_of_id
from ledger.api.schemas import MAX_BATCH_COMMANDS
from ledger.api.timestamps import rfc3339_to_ns
from ledger.core.codes import ResultCode
from ledger.core.commands import Command
from ledger.core.machine import Event, Result
from ledger.eventstore.port import EventStore
from ledger.shards import valid_ledger_code
from ledger.transport.codec import EncodedCommands

_batchjson.configure(
    result=Result, event=Event,
    code_names=tuple(ResultCode(number).name.encode() for number in range(len(ResultCode))),
)

INVALID_EXPIRY = -1
"""Stands in for an unparsable `expires_at`: the core rejects it with `expiry_invalid`."""

CONFLICTING_ACCOUNTS = ["from", "account"]
"""Stands in for an item whose `from` and `account` differ: rejected as `reference_invalid`."""

_ACCOUNT_FIELDS = ("from", "account", "to", "beneficiary")


def batch_parse(body: bytes) -> tuple[list[Any], bool, str | None]:
    """(items, atomic, ledger) of a request body; raises `ApiError` for an unusable batch."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "request_malformed", f"the body is not valid JSON: {exc}") from None
    if type(data) is not dict or type(data.get("transfers")) is not list:
        raise ApiError(422, "request_invalid",
                       'the body must be an object with a "transfers" list')
    items = data["transfers"]
    if len(items) > MAX_BATCH_COMMANDS:
        raise ApiError(413, "batch_too_large",
                       f"a batch holds at most {MAX_BATCH_COMMANDS} commands",
                       {"max_commands": MAX_BATCH_COMMANDS, "commands": len(items)})
    atomic = data.get("atomic", False)
    if type(atomic) is not bool:
        raise ApiError(422, "request_invalid", '"atomic" must be true or false')
    ledger = data.get("ledger")
    if ledger is not None and type(ledger) is not str:
        raise ApiError(422, "request_invalid", '"ledger" must be a ledger code')
    return items, atomic, ledger


def batch_ledger(items: list[Any], ledger: str | None) -> str:
    """The ledger a batch targets: given, else the first ledger an item's ids name."""
    if ledger is not None:
        return ledger
    for item in items:
        if type(item) is not dict:
            continue
        for name in (*_ACCOUNT_FIELDS, "hold_id"):
            code = ledger_of_id(item.get(name))
            if code is not None:
                return code
    raise ApiError(422, "ledger_required",
                   'give "ledger", or name at least one account id (acc_<ledger>_…)')


def item_command(item: Any, client: str) -> Command:
    """One batch item as a core command (see the module docstring for what is normalised)."""
    if type(item) is not dict:
        return Command(None, None, client)  # -> command_type_unknown
    get = item.get
    ctype = get("type")
    if ctype is None:
        ctype = "transfer"
    key = get("idempotency_key")
    account = get("from")
    if account is None:
        account = get("account")
    elif get("account") is not None and get("account") != account:
        account = CONFLICTING_ACCOUNTS
    expires_at = get("expires_at")
    if type(expires_at) is str:
        expires_at = rfc3339_to_ns(expires_at)
        if expires_at is None:
            expires_at = INVALID_EXPIRY
    command = Command(
        ctype if type(ctype) is str else None, key, client, account, get("to"),
        get("beneficiary"), get("amount"), get("hold_id"), expires_at, get("escrow_id"),
        get("trial_id"), get("netting_batch_id"), metadata=get("metadata"),
    )
    if ctype == "open_account":
        command.did = get("did")
        kind, safeguarding = get("kind"), get("safeguarding")
        # Unhashable values would break the core's membership tests; "" is rejected cleanly.
        command.kind = kind if kind is None or type(kind) is str else ""
        command.safeguarding = (
            safeguarding if safeguarding is None or type(safeguarding) is str else ""
        )
        command.tags = get("tags")
    return command


def batch_commands(items: list[Any], client: str) -> list[Command]:
    return [item_command(item, client) for item in items]


def batch_rows(body: bytes, client: str) -> tuple[str, EncodedCommands] | None:
    """(ledger, its commands encoded for the bus) of a body the native reader takes, with
    `client` as each command's client; None for any other body, which `batch_parse` and
    `batch_commands` then read (and answer, when it is unusable).

    The native reader parses without holding the interpreter lock, so the worker's event loop
    goes on answering (balance reads) meanwhile. It takes no batch that opens accounts."""
    read = _batchjson.rows(body, orjson.dumps(client), MAX_BATCH_COMMANDS)
    if read is None:
        return None
    atomic, ledger, tag, rows = read
    if ledger is None:
        # As `batch_ledger`, except that an id whose tag is no ledger code, where it would
        # look further, sends the body the Python way.
        ledger = tag.upper() if tag is not None else None
        if ledger is None or not valid_ledger_code(ledger):
            return None
    return ledger, EncodedCommands(rows, atomic)


def reply_json(rows: list, data: bytes, offset: int) -> bytes | None:
    """The response body straight from a bus reply (`BusReply.reply`), what `results_json`
    writes for the results it describes; None when a success lacks its event's bytes (the
    results are then built and the log asked)."""
    return _batchjson.reply_results(rows, data, offset)


def results_json(results: list[Result], store: EventStore, *, native: bool = True) -> bytes:
    """The response body: one result per item, in order, each with its event. Written by
    `_batchjson` unless a replayed success's event must be loaded from the log, or `native`
    is false (tests compare the two)."""
    body = _batchjson.results(results) if native else None
    if body is not None:
        return body
    ok = ResultCode.ok
    out = []
    append = out.append
    for index, result in enumerate(results):
        code = result.code
        append({
            "index": index, "status": "ok" if code == ok else "rejected", "code": code.name,
            "replayed": result.replayed,
            "event": result_event_json(result, store) if code == ok else None,
        })
    return orjson.dumps({"results": out})
