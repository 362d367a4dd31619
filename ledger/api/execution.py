"""The API's path to the ledger: find the shard, run commands, map failures to API errors.

Business rejections are results, not exceptions; what fails here is the infrastructure: an
unknown ledger (404), or a writer that is stopped, failed the write, or did not answer in time
(503, retryable: resending the same commands with the same idempotency keys is always safe).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apiaccess.errors import ApiError
from ledger import services
from ledger.core.codes import FIRST_RECORDED, ResultCode
from ledger.core.commands import Command
from ledger.core.machine import Result
from ledger.core.state import ledger_tag
from ledger.eventstore.port import EventStoreError
from ledger.runtime import runtime
from ledger.shards import Shard, UnknownLedger, valid_ledger_code
from ledger.writer import WriterError

R = ResultCode


def ledger_of_id(object_id: object) -> str | None:
    """The ledger code an account, hold or event id names (`acc_eur_…` -> EUR), if any."""
    if type(object_id) is not str:
        return None
    tag = ledger_tag(object_id)
    code = tag.upper() if tag else None
    return code if code and valid_ledger_code(code) else None


def shard_get(ledger: str) -> Shard:
    try:
        return runtime().shards.get(ledger)
    except UnknownLedger:
        raise ApiError(404, "ledger_not_found", f"no ledger {ledger!r}",
                       {"ledger": ledger}) from None


INVALID_KEY = "\x00"
"""Stands in for a non-ASCII idempotency key: invalid either way (`idempotency_key_invalid`),
and the writer encodes keys before validating them, which a lone surrogate would break."""


def idempotency_keys_normalize(commands: list[Command]) -> None:
    for command in commands:
        key = command.idempotency_key
        if type(key) is str and not key.isascii():
            command.idempotency_key = INVALID_KEY


@contextmanager
def ledger_failures(ledger: str) -> Iterator[None]:
    """Runs a ledger call, turning the failures of the infrastructure into API errors."""
    try:
        yield
    except UnknownLedger:
        raise ApiError(404, "ledger_not_found", f"no ledger {ledger!r}") from None
    except TimeoutError:
        raise ApiError(
            503, "ledger_timeout",
            "the ledger did not confirm in time; retry with the same idempotency keys",
        ) from None
    except (WriterError, EventStoreError):
        raise ApiError(
            503, "ledger_unavailable",
            "the ledger writer is unavailable; nothing was applied, retry later",
        ) from None


def commands_run(ledger: str, commands: list[Command], *, atomic: bool = False) -> list[Result]:
    shard_get(ledger)
    idempotency_keys_normalize(commands)
    with ledger_failures(ledger):
        return services.commands_execute(ledger=ledger, commands=commands, atomic=atomic)


_NOT_FOUND = frozenset({R.account_not_found, R.hold_not_found})


def rejection_status(code: ResultCode) -> int:
    """HTTP status of a rejected command on the single-command endpoints."""
    if code < FIRST_RECORDED or code == R.ledger_mismatch:
        return 422
    if code in _NOT_FOUND:
        return 404
    return 409


def rejection_error(result: Result) -> ApiError:
    code = result.code
    return ApiError(
        rejection_status(code), code.name, f"the ledger rejected the command: {code.name}",
        {"result_code": int(code), "replayed": result.replayed},
    )
