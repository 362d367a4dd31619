"""The ledger state machine: validates commands against state and turns them into events.

`StateMachine.execute` takes one group of client requests (the writer's group commit), and
returns one result per command plus the events to append, already sealed into the hash chain.
It is deterministic given the state, the clock value and the idempotency records it is handed.

Validation is a straight line of early returns in the order of `ResultCode` (see `codes`), with
one documented exception: `release` and `cancel_hold` name no account of their own, the hold
names them, so for those two the hold is looked up (and its beneficiary settled) before the
accounts are checked.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import struct
from collections.abc import Iterable
from typing import Any

from ledger.core import canonical
from ledger.core.chain import LEAF_PREFIX
from ledger.core.codes import ResultCode, is_recorded
from ledger.core.commands import (
    COMMAND_TYPES,
    DEFAULT_SAFEGUARDING,
    MAX_AMOUNT,
    AccountKind,
    Command,
    Request,
    Safeguarding,
)
from ledger.core.events import EVENT_OF_COMMAND
from ledger.core.state import (
    BUCKETS,
    FEE_POOL_DID,
    ISSUANCE_DID,
    STATUS_CODES,
    Account,
    AccountStatus,
    HoldStatus,
    LedgerState,
    account_id_for,
    apply_event,
    ledger_tag,
)

try:
    from ledger.core import _fastpath
except ImportError:  # not compiled (a source checkout without `make install`): pure Python
    _fastpath = None

R = ResultCode

MAX_KEY_LENGTH = 128
MAX_REFERENCE_LENGTH = 128
MAX_DID_LENGTH = 256
MAX_TAGS = 16
MAX_METADATA_KEYS = 16
MAX_METADATA_STRING = 256
MIN_INT64 = -(2**63)

_TOKEN = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_CLIENT_KINDS = frozenset({AccountKind.user, AccountKind.clearing, AccountKind.fee_pool,
                           AccountKind.reserve})
_SAFEGUARDING = frozenset(Safeguarding)

_NEEDS_AMOUNT = frozenset({
    "mint", "burn", "transfer", "hold", "stake_lock", "stake_release", "stake_slash",
    "fee_transfer", "fee_burn", "promo_mint", "promo_burn",
})
_NEEDS_ACCOUNT = frozenset({
    "freeze_account", "unfreeze_account", "close_account", "mint", "burn", "transfer", "hold",
    "stake_lock", "stake_release", "stake_slash", "fee_transfer", "promo_mint", "promo_burn",
})
_NEEDS_STAKE_REFERENCE = frozenset({"stake_lock", "stake_release", "stake_slash"})
_NEEDS_HOLD_ID = frozenset({"release", "cancel_hold"})


class Event:
    """An event decided by the machine: its seq, canonical bytes and chain hash, and the
    balance state of each touched account right after it (`(account id, packed snapshot)`
    pairs, see `pack_snapshot`, for the store's as-of index).

    The body dict is what the bytes encode. Events decided by the native fast path carry only
    the bytes; their body is decoded the first time someone asks for it, which on the write
    path nobody does."""

    __slots__ = ("seq", "type", "_body", "data", "hash", "snapshots")

    def __init__(
        self, seq: int, etype: str | None, body: dict[str, Any] | None, data: bytes,
        chain_hash: bytes, snapshots: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.seq = seq
        # The machine always knows it; an event received over the bus (bytes only) has None.
        self.type = etype
        self._body = body
        self.data = data
        self.hash = chain_hash
        self.snapshots = [] if snapshots is None else snapshots

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            self._body = canonical.decode(self.data)
        return self._body


_SNAPSHOT = struct.Struct(">B5q")
pack_snapshot = _SNAPSHOT.pack
"""`pack_snapshot(status code, available, held, bonded, fee, promo)`: an account's balance state
as the store's as-of index keeps it."""
unpack_snapshot = _SNAPSHOT.unpack


class IdempotencyRecord:
    """The first outcome of an idempotency key: request fingerprint, code, event seq (or -1)."""

    __slots__ = ("fingerprint", "code", "seq")
    _FORMAT = struct.Struct(">16sHq")  # also written by eventstore/_rocksbatch.c (pack_record)

    def __init__(self, fingerprint: bytes, code: int, seq: int) -> None:
        self.fingerprint = fingerprint
        self.code = code
        self.seq = seq

    def pack(self) -> bytes:
        return self._FORMAT.pack(self.fingerprint, self.code, self.seq)

    @classmethod
    def unpack(cls, data: bytes) -> IdempotencyRecord:
        return cls(*cls._FORMAT.unpack(data))


class Result:
    """The outcome of one command. `event` is set when the command produced one now; a replay
    carries the original event's `seq` instead (the writer loads it from the log)."""

    __slots__ = ("code", "event", "replayed", "seq", "account")

    def __init__(
        self, code: ResultCode, event: Event | None = None, replayed: bool = False,
        seq: int = -1, account: str | None = None,
    ) -> None:
        self.code = code
        self.event = event
        self.replayed = replayed
        self.seq = seq
        self.account = account

    @property
    def ok(self) -> bool:
        return self.code == R.ok

    def __repr__(self) -> str:
        return f"Result({self.code.name}, seq={self.seq}, replayed={self.replayed})"


class GroupOutcome:
    """What one group commit produced: results per request, new events, new idempotency
    records (scoped key -> record) to persist in the same write."""

    __slots__ = ("results", "events", "records")

    def __init__(self) -> None:
        self.results: list[list[Result]] = []
        self.events: list[Event] = []
        self.records: dict[bytes, IdempotencyRecord] = {}


def touched_holds(events: Iterable[Event], state: LedgerState) -> dict[str, Any]:
    """The holds that `events` created or resolved, as they stand in `state` now."""
    ids = {e.body["refs"]["hold_id"] for e in events if e.type in HOLD_EVENT_TYPES}
    return {hold_id: state.holds[hold_id] for hold_id in ids}


HOLD_EVENT_TYPES = frozenset({"hold", "release", "hold_cancelled", "hold_expired"})
"""The event types that create or resolve a hold (their refs name it)."""


def commands_from_rows(rows: list[list[Any]]) -> list[Command]:
    """Commands from rows of their field values in `Command.__slots__` order, the bus's wire
    form; built natively when the fast path is there (the dataclass's __init__ costs about a
    microsecond a command). A row of the wrong length raises TypeError either way."""
    if _fastpath is not None:
        return _fastpath.commands_from_rows(rows)
    return [Command(*row) for row in rows]


def idempotency_scope(client: str, key: str) -> bytes:
    """Idempotency keys are scoped to the API client that sent them.

    Never raises: a key that is not valid text (lone surrogates) still gets a scope, and is
    then refused by the shape check before the scope is used for anything."""
    return f"{client}\x00{key}".encode("utf-8", "surrogatepass")


_HEX_DIGITS = frozenset("0123456789abcdef")


def seq_named_by(event_id: str, ledger: str) -> int | None:
    """The seq that an event id of `ledger` names (ids are made by `StateMachine._event_id`),
    or None when it is not such an id. Whether that event exists is the store's question."""
    prefix = f"evt_{ledger.lower()}_"
    digits = event_id[len(prefix):]
    if not event_id.startswith(prefix) or len(digits) != 20 or not _HEX_DIGITS.issuperset(digits):
        return None
    return int(digits[:12], 16)


def fingerprint(command: Command) -> bytes:
    return hashlib.blake2b(canonical.encode(command.request_fields()), digest_size=16).digest()


class StateMachine:
    """`native=False` decides everything in Python, also where the compiled fast path could
    (the reference the fast path is tested against)."""

    def __init__(self, state: LedgerState, *, native: bool = True) -> None:
        self.state = state
        self._native = _fastpath if native else None
        # Ids only need to be unique, not secret: a PRNG seeded from the OS is enough and
        # much cheaper per event than a system call.
        self._random = random.Random(os.urandom(16))

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.state.tag}_{self._random.getrandbits(64):016x}"

    def _event_id(self, seq: int) -> str:
        """`evt_<ledger>_<seq as 12 hex digits><8 random hex digits>`: unique, and ordered by
        seq so the store's id index grows at its end instead of at random places."""
        return f"evt_{self.state.tag}_{seq:012x}{self._random.getrandbits(32):08x}"

    # -- entry points --------------------------------------------------------------------------

    def genesis(self, now: int) -> GroupOutcome:
        """Open the shard's issuance and fee-pool accounts; the first events of every log."""
        outcome = GroupOutcome()
        if self.state.next_seq:
            return outcome
        now = self._clock(now)
        for did, kind, safeguarding in (
            (ISSUANCE_DID, AccountKind.system, Safeguarding.not_applicable),
            (FEE_POOL_DID, AccountKind.fee_pool, Safeguarding.own_funds),
        ):
            details = {
                "account": account_id_for(self.state.ledger, did), "did": did, "kind": kind,
                "tags": ["system"], "safeguarding": safeguarding,
            }
            self._emit(outcome, "account_opened", now, None, "", [], {}, details, {})
        return outcome

    def idempotency_scopes(self, requests: list[Request]) -> list[bytes]:
        """The scoped key of every command whose key is non-empty text, in order: the records
        `execute` needs as `known` are the store's records for these."""
        if self._native is not None:
            return self._native.scopes(requests, idempotency_scope)
        return [
            idempotency_scope(command.client, command.idempotency_key)
            for request in requests for command in request.commands
            if command.idempotency_key and type(command.idempotency_key) is str
        ]

    def execute(
        self, requests: list[Request], now: int, known: dict[bytes, IdempotencyRecord],
        outcome: GroupOutcome | None = None,
    ) -> GroupOutcome:
        """Decide one group of requests. `known` maps scoped idempotency keys to the records
        the store holds for them (the writer fetches them beforehand); it is updated in place
        with the new records, which are also returned in `outcome.records`. Given an
        `outcome`, what is decided is added to it (one write for several calls)."""
        if outcome is None:
            outcome = GroupOutcome()
        now = self._clock(now)
        for hold in self.state.due_holds(now):
            self._emit(
                outcome, "hold_expired", now, None, "",
                [_leg(hold.account, "held", -hold.amount),
                 _leg(hold.account, "available", hold.amount)],
                {"hold_id": hold.id}, {}, {},
            )
        for request in requests:
            if request.atomic:
                outcome.results.append(self._execute_atomic(request.commands, now, known, outcome))
            elif self._native is not None:
                outcome.results.append(
                    self._native.execute_plain(self, request.commands, now, known, outcome)
                )
            else:
                outcome.results.append(
                    [self._execute_one(c, now, known, outcome) for c in request.commands]
                )
        return outcome

    # -- orchestration -------------------------------------------------------------------------

    def _clock(self, now: int) -> int:
        # The writer's clock never runs backwards, so ts is non-decreasing in seq order.
        return now if now > self.state.last_ts else self.state.last_ts

    def _execute_atomic(
        self, commands: list[Command], now: int, known: dict, outcome: GroupOutcome
    ) -> list[Result]:
        state = self.state
        first_event = len(outcome.events)
        state.begin()
        results = []
        failed = None
        for command in commands:
            result = self._execute_one(command, now, known, outcome)
            results.append(result)
            if not result.ok:
                failed = result
                break
        if failed is None:
            state.commit()
            return results
        state.rollback()
        del outcome.events[first_event:]
        # The rollback also dropped the chain's idempotency records. Only the failing
        # command's own outcome is final for its key; the others were not judged on their own
        # and may be retried.
        if is_recorded(failed.code) and not failed.replayed:
            command = commands[len(results) - 1]
            scope = idempotency_scope(command.client, command.idempotency_key)
            record = IdempotencyRecord(fingerprint(command), int(failed.code), -1)
            known[scope] = outcome.records[scope] = record
        out = []
        for result in results:
            # A replay reports an earlier, final outcome: it stays true whatever this chain does.
            kept = result is failed or result.replayed
            out.append(result if kept else Result(R.linked_command_failed))
        out.extend(Result(R.linked_command_failed) for _ in commands[len(results):])
        return out

    def _execute_one(
        self, command: Command, now: int, known: dict, outcome: GroupOutcome
    ) -> Result:
        code = _check_shape(command)
        if code is not None:
            return Result(code)
        scope = idempotency_scope(command.client, command.idempotency_key)
        request_fingerprint = fingerprint(command)
        record = known.get(scope)
        if record is not None:
            if record.fingerprint != request_fingerprint:
                return Result(R.idempotency_key_reused_with_different_request)
            return Result(
                ResultCode(record.code), replayed=True, seq=record.seq,
                account=self._replayed_account(command),
            )
        decided = _HANDLERS[command.type](self, command, now)
        if decided.__class__ is ResultCode:
            code = decided
            result = Result(code, None, False, -1, self._replayed_account(command))
            if not is_recorded(code):
                return result
            seq = -1
        else:
            code = R.ok
            etype, legs, refs, details = decided
            event = self._emit(
                outcome, etype, now, command.idempotency_key, command.client, legs, refs,
                details, command.metadata or {},
            )
            seq = event.seq
            result = Result(code, event, False, seq, details.get("account"))
        record = IdempotencyRecord(request_fingerprint, code.value, seq)
        if self.state.journal is None:
            known[scope] = outcome.records[scope] = record
        else:
            self.state.set_item(known, scope, record)
            self.state.set_item(outcome.records, scope, record)
        return result

    def _replayed_account(self, command: Command) -> str | None:
        if command.type == "open_account":
            return account_id_for(self.state.ledger, command.did)
        return None

    def _emit(
        self, outcome: GroupOutcome, etype: str, now: int, key: str | None, client: str,
        legs: list, refs: dict, details: dict, metadata: dict,
    ) -> Event:
        """Apply one event to the state and seal it into the hash chain at once.

        Sealing here rather than at the end of the group keeps the chain head in step with
        `next_seq`, so the native fast path can interleave its events with these; an atomic
        rollback restores the head with the rest of the state."""
        state = self.state
        seq = state.next_seq
        prev = state.head_hash
        body = {
            "seq": seq, "id": self._event_id(seq), "type": etype,
            "ledger": state.ledger, "ts": now, "client": client, "idempotency_key": key,
            "legs": legs, "refs": refs, "details": details, "metadata": metadata,
            "prev_hash": prev.hex(),
        }
        data = canonical.encode(body)
        # The chain hash of the module docstring of `chain`: SHA-256(prev || leaf hash).
        chain_hash = hashlib.sha256(prev + hashlib.sha256(LEAF_PREFIX + data).digest()).digest()
        # Balances dicts keep BUCKETS order, so this is `Account.snapshot()` without the call.
        snapshots = [
            (a.id, pack_snapshot(STATUS_CODES[a.status], *a.balances.values()))
            for a in apply_event(state, body)
        ]
        state.head_hash = chain_hash
        event = Event(seq, etype, body, data, chain_hash, snapshots)
        outcome.events.append(event)
        return event

    # -- account resolution --------------------------------------------------------------------

    def _resolve(self, ids: tuple[str, ...]) -> ResultCode | list:
        """Look accounts up in code precedence: not found, frozen, closed, other ledger."""
        accounts = self.state.accounts
        found = [accounts.get(account_id) for account_id in ids]
        foreign = False
        for account_id, account in zip(ids, found, strict=True):
            if account is None:
                if ledger_tag(account_id) in (None, self.state.tag):
                    return R.account_not_found
                foreign = True
        for account in found:
            if account is not None and account.status == AccountStatus.frozen:
                return R.account_frozen
        for account in found:
            if account is not None and account.status == AccountStatus.closed:
                return R.account_closed
        if foreign:
            return R.ledger_mismatch
        return found

    def _movement(
        self, ids: tuple[str, ...], debit: tuple[int, str] | None, credit: tuple[int, str] | None,
        amount: int, allowed: tuple[frozenset, ...],
    ) -> ResultCode | list:
        """Shared checks of a money movement between resolved accounts.

        `debit`/`credit` name (index into ids, bucket); `allowed[i]` the kinds ids[i] may be.
        """
        found = self._resolve(ids)
        if isinstance(found, ResultCode):
            return found
        for account, kinds in zip(found, allowed, strict=True):
            if account.kind not in kinds:
                return R.account_kind_not_allowed
        if debit is not None:
            account = found[debit[0]]
            balance = account.balances[debit[1]]
            if account.kind != AccountKind.system and balance < amount:
                return R.insufficient_funds
            if balance - amount < -MAX_AMOUNT:
                return R.balance_would_overflow
        if credit is not None and found[credit[0]].balances[credit[1]] + amount > MAX_AMOUNT:
            return R.balance_would_overflow
        return found

    # -- handlers: one per command type, each a straight line of early returns ------------------

    def _open_account(self, c: Command, now: int):
        account_id = account_id_for(self.state.ledger, c.did)
        if account_id in self.state.accounts:
            return R.account_already_exists
        kind = c.kind or AccountKind.user
        details = {
            "account": account_id, "did": c.did, "kind": kind, "tags": list(c.tags or []),
            "safeguarding": c.safeguarding or DEFAULT_SAFEGUARDING[kind],
        }
        return "account_opened", [], {}, details

    def _freeze_account(self, c: Command, now: int):
        account = self.state.accounts.get(c.account)
        if account is None:
            return self._missing(c.account)
        if account.status == AccountStatus.frozen:
            return R.account_frozen
        if account.status == AccountStatus.closed:
            return R.account_closed
        if account.kind == AccountKind.system:
            return R.account_kind_not_allowed
        return "account_frozen", [], {}, {"account": account.id}

    def _unfreeze_account(self, c: Command, now: int):
        account = self.state.accounts.get(c.account)
        if account is None:
            return self._missing(c.account)
        if account.status == AccountStatus.closed:
            return R.account_closed
        if account.status != AccountStatus.frozen:
            return R.account_not_frozen
        return "account_unfrozen", [], {}, {"account": account.id}

    def _close_account(self, c: Command, now: int):
        found = self._resolve((c.account,))
        if isinstance(found, ResultCode):
            return found
        account = found[0]
        # The issuance account and the ledger's default fee pool serve every command that
        # names no other; closing them would disable those commands for good.
        if account.kind == AccountKind.system or account.id == self.state.fee_pool_id:
            return R.account_kind_not_allowed
        if any(account.balances.values()):
            return R.account_has_balance
        return "account_closed", [], {}, {"account": account.id}

    def _missing(self, account_id: str) -> ResultCode:
        if ledger_tag(account_id) in (None, self.state.tag):
            return R.account_not_found
        return R.ledger_mismatch

    def _two_party(self, c: Command, etype: str, src: str, src_bucket: str, dst: str,
                   dst_bucket: str, src_kinds: frozenset, dst_kinds: frozenset, refs: dict):
        amount = c.amount
        accounts = self.state.accounts
        a = accounts.get(src)
        b = accounts.get(dst)
        # Fast path: both accounts usable, so the only possible codes are about balances.
        # Anything else takes `_movement`, which reports the code in precedence order.
        if (
            a is None or b is None or a.status != "open" or b.status != "open"
            or a.kind not in src_kinds or b.kind not in dst_kinds
        ):
            found = self._movement(
                (src, dst), (0, src_bucket), (1, dst_bucket), amount, (src_kinds, dst_kinds)
            )
            if isinstance(found, ResultCode):
                return found
        balance = a.balances[src_bucket]
        if balance < amount and a.kind != AccountKind.system:
            return R.insufficient_funds
        if balance - amount < -MAX_AMOUNT or b.balances[dst_bucket] + amount > MAX_AMOUNT:
            return R.balance_would_overflow
        legs = [
            {"account": src, "bucket": src_bucket, "amount": -amount},
            {"account": dst, "bucket": dst_bucket, "amount": amount},
        ]
        return etype, legs, refs, {}

    def _mint(self, c: Command, now: int):
        return self._two_party(c, "mint", self.state.issuance_id, "available", c.account,
                               "available", _SYSTEM, _CLIENT_KINDS, _refs(c))

    def _burn(self, c: Command, now: int):
        return self._two_party(c, "burn", c.account, "available", self.state.issuance_id,
                               "available", _CLIENT_KINDS, _SYSTEM, _refs(c))

    def _transfer(self, c: Command, now: int):
        return self._two_party(c, "transfer", c.account, "available", c.to, "available",
                               _CLIENT_KINDS, _CLIENT_KINDS, _refs(c))

    def _promo_mint(self, c: Command, now: int):
        return self._two_party(c, "promo_mint", self.state.issuance_id, "promo", c.account,
                               "promo", _SYSTEM, _CLIENT_KINDS, _refs(c))

    def _promo_burn(self, c: Command, now: int):
        return self._two_party(c, "promo_burn", c.account, "promo", self.state.issuance_id,
                               "promo", _CLIENT_KINDS, _SYSTEM, _refs(c))

    def _fee_transfer(self, c: Command, now: int):
        return self._two_party(c, "fee_transfer", c.account, "available",
                               c.to or self.state.fee_pool_id, "fee", _CLIENT_KINDS, _FEE_POOL,
                               _refs(c))

    def _fee_burn(self, c: Command, now: int):
        return self._two_party(c, "fee_burn", c.account or self.state.fee_pool_id, "fee",
                               self.state.issuance_id, "available", _FEE_POOL, _SYSTEM, _refs(c))

    def _stake_slash(self, c: Command, now: int):
        return self._two_party(c, "stake_slash", c.account, "bonded",
                               c.to or self.state.fee_pool_id, "fee", _CLIENT_KINDS, _FEE_POOL,
                               _refs(c))

    def _own_buckets(self, c: Command, etype: str, src_bucket: str, dst_bucket: str,
                     refs: dict, details: dict):
        """A movement between two buckets of one account (hold, stake lock and release)."""
        found = self._movement(
            (c.account,), (0, src_bucket), (0, dst_bucket), c.amount, (_CLIENT_KINDS,)
        )
        if isinstance(found, ResultCode):
            return found
        legs = [_leg(c.account, src_bucket, -c.amount), _leg(c.account, dst_bucket, c.amount)]
        return etype, legs, refs, details

    def _stake_lock(self, c: Command, now: int):
        return self._own_buckets(c, "stake_lock", "available", "bonded", _refs(c), {})

    def _stake_release(self, c: Command, now: int):
        return self._own_buckets(c, "stake_release", "bonded", "available", _refs(c), {})

    def _hold(self, c: Command, now: int):
        if c.beneficiary is not None:
            found = self._resolve((c.account, c.beneficiary))
            if isinstance(found, ResultCode):
                return found
            if found[1].kind not in _CLIENT_KINDS:
                return R.account_kind_not_allowed
        hold_id = c.hold_id or self._new_id("hld")
        decided = self._own_buckets(
            c, "hold", "available", "held", {**_refs(c), "hold_id": hold_id},
            {"beneficiary": c.beneficiary, "expires_at": c.expires_at},
        )
        if isinstance(decided, ResultCode):
            return decided
        if hold_id in self.state.holds:
            return R.hold_id_already_exists
        if c.expires_at is not None and c.expires_at <= now:
            return R.expiry_must_be_in_future
        return decided

    def _open_hold(self, c: Command):
        hold = self.state.holds.get(c.hold_id)
        if hold is None:
            return R.hold_not_found
        if hold.status == HoldStatus.expired:
            return R.hold_expired
        if hold.status != HoldStatus.open:
            return R.hold_already_resolved
        return hold

    def _release(self, c: Command, now: int):
        hold = self._open_hold(c)
        if isinstance(hold, ResultCode):
            return hold
        if c.beneficiary is not None and hold.beneficiary not in (None, c.beneficiary):
            return R.beneficiary_mismatch
        beneficiary = c.beneficiary or hold.beneficiary
        if beneficiary is None:
            return R.beneficiary_required
        found = self._resolve((hold.account, beneficiary))
        if isinstance(found, ResultCode):
            return found
        if found[1].kind not in _CLIENT_KINDS:
            return R.account_kind_not_allowed
        captured = hold.amount if c.amount is None else c.amount
        if found[1].balances["available"] + captured > MAX_AMOUNT:
            return R.balance_would_overflow
        if captured > hold.amount:
            return R.release_exceeds_hold
        legs = [_leg(hold.account, "held", -hold.amount), _leg(beneficiary, "available", captured)]
        if captured < hold.amount:
            legs.append(_leg(hold.account, "available", hold.amount - captured))
        details = {"beneficiary": beneficiary, "captured": captured}
        return "release", legs, {**_refs(c), "hold_id": hold.id}, details

    def _cancel_hold(self, c: Command, now: int):
        hold = self._open_hold(c)
        if isinstance(hold, ResultCode):
            return hold
        legs = [_leg(hold.account, "held", -hold.amount),
                _leg(hold.account, "available", hold.amount)]
        return "hold_cancelled", legs, {**_refs(c), "hold_id": hold.id}, {}


_SYSTEM = frozenset({AccountKind.system})
_FEE_POOL = frozenset({AccountKind.fee_pool})

_HANDLERS = {
    "open_account": StateMachine._open_account,
    "freeze_account": StateMachine._freeze_account,
    "unfreeze_account": StateMachine._unfreeze_account,
    "close_account": StateMachine._close_account,
    "mint": StateMachine._mint,
    "burn": StateMachine._burn,
    "transfer": StateMachine._transfer,
    "hold": StateMachine._hold,
    "release": StateMachine._release,
    "cancel_hold": StateMachine._cancel_hold,
    "stake_lock": StateMachine._stake_lock,
    "stake_release": StateMachine._stake_release,
    "stake_slash": StateMachine._stake_slash,
    "fee_transfer": StateMachine._fee_transfer,
    "fee_burn": StateMachine._fee_burn,
    "promo_mint": StateMachine._promo_mint,
    "promo_burn": StateMachine._promo_burn,
}
assert set(_HANDLERS) == set(COMMAND_TYPES) == set(EVENT_OF_COMMAND)

if _fastpath is not None:
    _fastpath.configure(
        command=Command, event=Event, result=Result, record=IdempotencyRecord, account=Account,
        ok=R.ok, buckets=BUCKETS,
    )


def _leg(account: str, bucket: str, amount: int) -> dict[str, Any]:
    return {"account": account, "bucket": bucket, "amount": amount}


def _refs(c: Command) -> dict[str, str]:
    refs = {}
    if c.escrow_id is not None:
        refs["escrow_id"] = c.escrow_id
    if c.trial_id is not None:
        refs["trial_id"] = c.trial_id
    if c.netting_batch_id is not None:
        refs["netting_batch_id"] = c.netting_batch_id
    return refs


def _is_token(text: str) -> bool:
    """Non-empty visible ASCII without spaces: what ids, keys, DIDs and references may hold."""
    return text != "" and text.isascii() and text.isprintable() and " " not in text


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_reference(value: Any) -> bool:
    return value is None or (
        type(value) is str and len(value) <= MAX_REFERENCE_LENGTH and _is_token(value)
    )


def _check_shape(c: Command) -> ResultCode | None:
    """Schema-level checks, in code order. None when the command is well formed."""
    ctype = c.type
    if type(ctype) is not str or ctype not in COMMAND_TYPES:
        return R.command_type_unknown
    key = c.idempotency_key
    if not key:
        return R.idempotency_key_required
    if type(key) is not str or len(key) > MAX_KEY_LENGTH or not _is_token(key):
        return R.idempotency_key_invalid
    amount = c.amount
    if ctype in _NEEDS_AMOUNT or amount is not None:
        if not _is_int(amount) or amount <= 0:
            return R.amount_must_be_positive
        if amount > MAX_AMOUNT:
            return R.amount_exceeds_maximum
    if ctype in _NEEDS_ACCOUNT and c.account is None:
        return R.account_required
    if ctype == "transfer":
        if c.to is None:
            return R.account_required
        if c.account == c.to:
            return R.accounts_must_be_different
    if ctype == "hold" and c.beneficiary is not None and c.beneficiary == c.account:
        return R.accounts_must_be_different
    # Fields are checked whatever the command type: the fingerprint encodes them all.
    did = c.did
    if (ctype == "open_account" or did is not None) and (
        type(did) is not str or len(did) > MAX_DID_LENGTH or not _is_token(did)
    ):
        return R.did_invalid
    if c.kind is not None and (type(c.kind) is not str or c.kind not in _CLIENT_KINDS):
        return R.account_kind_invalid
    if c.safeguarding is not None and (
        type(c.safeguarding) is not str or c.safeguarding not in _SAFEGUARDING
    ):
        return R.safeguarding_class_invalid
    if c.tags is not None and not _valid_tags(c.tags):
        return R.tags_invalid
    if not (
        _is_reference(c.account) and _is_reference(c.to) and _is_reference(c.beneficiary)
        and _is_reference(c.hold_id) and _is_reference(c.escrow_id)
        and _is_reference(c.trial_id) and _is_reference(c.netting_batch_id)
    ):
        return R.reference_invalid
    if ctype in _NEEDS_HOLD_ID and c.hold_id is None:
        return R.reference_required
    if ctype in _NEEDS_STAKE_REFERENCE and c.escrow_id is None and c.trial_id is None:
        return R.reference_required
    if c.metadata is not None and not _valid_metadata(c.metadata):
        return R.metadata_invalid
    if c.expires_at is not None and (not _is_int(c.expires_at) or not 0 < c.expires_at
                                     <= MAX_AMOUNT):
        return R.expiry_invalid
    return None


def _valid_tags(tags: Any) -> bool:
    return (
        type(tags) is list and len(tags) <= MAX_TAGS
        and all(type(t) is str and _TOKEN.fullmatch(t) for t in tags)
    )


def _valid_metadata(metadata: Any) -> bool:
    if type(metadata) is not dict or len(metadata) > MAX_METADATA_KEYS:
        return False
    for key, value in metadata.items():
        if type(key) is not str or not _TOKEN.fullmatch(key):
            return False
        if value is None or type(value) is bool:
            continue
        if type(value) is int:
            if not MIN_INT64 <= value <= MAX_AMOUNT:
                return False
        elif type(value) is not str or len(value) > MAX_METADATA_STRING:
            return False
        elif not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
                return False
    return True
