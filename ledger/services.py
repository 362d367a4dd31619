"""Ledger services: the one path by which Django code (admin, API, commands) changes the ledger.

Writes go through the command bus to the shard's writer; nothing here writes RocksDB or the
read models directly. Operator actions name the acting user twice: inside the event itself
(`client` = "operator:<user id>", so the immutable log says who did it) and in an
`OperatorAction` row with the outcome, for the admin's audit view.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.machine import Result
from ledger.models import Account, Ledger, OperatorAction
from ledger.projector import catch_up
from ledger.runtime import runtime
from ledger.shards import valid_ledger_code


class LedgerServiceError(Exception):
    """Root of the ledger services' exceptions. `code` is stable for API clients."""

    code = "ledger_error"


class InvalidLedger(LedgerServiceError):
    code = "ledger_invalid"


class LedgerConflict(LedgerServiceError):
    code = "ledger_exists_with_different_scale"


MAX_SCALE = 18


def ledger_create(*, code: str, scale: int) -> tuple[Ledger, bool]:
    """Create a ledger (registry row and shard with its genesis events), or return the existing
    one when it has the same scale. Returns (ledger, created)."""
    if not valid_ledger_code(code):
        raise InvalidLedger("ledger codes are 1-12 upper-case letters or digits, letter first")
    if type(scale) is not int or not 0 <= scale <= MAX_SCALE:
        raise InvalidLedger(f"scale must be an integer from 0 to {MAX_SCALE}")
    existing = Ledger.objects.filter(code=code).first()
    if existing is not None:
        if existing.scale != scale:
            raise LedgerConflict(f"ledger {code} exists with scale {existing.scale}")
        return existing, False
    try:
        with transaction.atomic():
            ledger = Ledger.objects.create(code=code, scale=scale)
    except IntegrityError:
        # Created concurrently: same answer as if it had existed before.
        return ledger_create(code=code, scale=scale)
    shard = runtime().shards.create(code)
    catch_up(ledger, shard.store)
    return ledger, True


def commands_execute(*, ledger: str, commands: list[Command], atomic: bool = False) -> list[Result]:
    """Run a batch of commands on a ledger's writer; one result per command, once durable."""
    return runtime().bus.execute(ledger, Request(commands, atomic))


def ledger_project(*, ledger: Ledger) -> int:
    """Bring the ledger's read models up to the end of its log now."""
    return catch_up(ledger, runtime().shards.get(ledger.code).store)


@dataclass(frozen=True)
class OperatorOutcome:
    result: Result
    action: OperatorAction

    @property
    def ok(self) -> bool:
        return self.result.code == ResultCode.ok


def _operator_command(
    *, user: AbstractBaseUser, ledger: Ledger, action: str, command: Command
) -> OperatorOutcome:
    command.client = f"operator:{user.pk}"
    command.idempotency_key = command.idempotency_key or f"{action}:{uuid.uuid4().hex}"
    [result] = commands_execute(ledger=ledger.code, commands=[command])
    event = result.event.body if result.event is not None else None
    record = OperatorAction.objects.create(
        user=user, ledger=ledger, action=action,
        command={k: v for k, v in _command_fields(command).items() if v is not None},
        code=result.code.name, event_id=event["id"] if event else "",
        event_seq=result.seq if result.seq >= 0 else None,
    )
    ledger_project(ledger=ledger)
    return OperatorOutcome(result, record)


def _command_fields(command: Command) -> dict:
    return {name: getattr(command, name) for name in Command.__slots__}


def account_open(
    *, user: AbstractBaseUser, ledger: Ledger, did: str, kind: str = "user",
    tags: list[str] | None = None, safeguarding: str | None = None,
) -> OperatorOutcome:
    command = Command(
        "open_account", None, did=did, kind=kind, tags=tags, safeguarding=safeguarding
    )
    return _operator_command(user=user, ledger=ledger, action="open_account", command=command)


def account_freeze(*, user: AbstractBaseUser, account: Account) -> OperatorOutcome:
    command = Command("freeze_account", None, account=account.pk)
    return _operator_command(
        user=user, ledger=account.ledger, action="freeze_account", command=command
    )


def account_unfreeze(*, user: AbstractBaseUser, account: Account) -> OperatorOutcome:
    command = Command("unfreeze_account", None, account=account.pk)
    return _operator_command(
        user=user, ledger=account.ledger, action="unfreeze_account", command=command
    )


def money_mint(
    *, user: AbstractBaseUser, account: Account, amount: int, idempotency_key: str | None = None
) -> OperatorOutcome:
    command = Command("mint", idempotency_key, account=account.pk, amount=amount)
    return _operator_command(user=user, ledger=account.ledger, action="mint", command=command)
