"""Random command groups agree with an independent reference model, and the ledger invariants
hold after every group.

Each example runs a few groups against a fresh shard: every command type, valid and invalid
amounts and fields, frozen and closed accounts, holds with beneficiaries, partial captures and
expiries reached by moving the writer's clock (also backwards), atomic requests that mix good
and bad commands, several clients, and idempotency keys repeated with the same request, with a
different one, or after a schema error. After each group:

- codes, replay flags and seqs equal the model's; balances, statuses and holds equal the model's;
  the idempotency records hold the same keys with the same first outcomes;
- no bucket of a non-system account is negative; every event's legs sum to zero; all balances
  of the shard sum to zero; outstanding == -issuance.available == the non-system sum of
  available + held + bonded + fee (promo is owed by issuance.promo, not by issuance.available);
- the new events, replayed from their stored bytes with `apply_event`, rebuild the live state
  exactly (and each event's balance snapshots are the replayed accounts' state right after
  it), and they continue the hash chain (`verify_chain`).
At the end the whole log, replayed from seq 0, gives the live state again.

A second property: an atomic chain that failed and was retried without its failing command
leaves exactly the shard that the retry alone would have left, also once its holds expire.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import canonical
from ledger.core.chain import verify_chain
from ledger.core.codes import ResultCode
from ledger.core.commands import Command, Request
from ledger.core.events import event_accounts
from ledger.core.machine import idempotency_scope, unpack_snapshot
from ledger.core.state import BUCKETS, LedgerState, account_id_for, apply_event
from tests.unit.core.conftest import SECOND, replay, state_picture, stored
from tests.unit.core.reference_model import LINKED, SCHEMA_CODES, ReferenceLedger

MAX_AMOUNT = 2**63 - 1
OWN_DIDS = ("did:ex:alice", "did:ex:bob", "did:ex:carol", "did:ex:dave")
FOREIGN_ID = account_id_for("USD", "did:ex:alice")
UNOPENED_ID = account_id_for("EUR", "did:ex:nobody")
HOLD_IDS = ("hold-0", "hold-1", "hold-2")
CLIENTS = ("client-a", "client-b")
KINDS = (None, "user", "clearing", "fee_pool", "reserve")
BAD_AMOUNTS = (0, -7, 2**63, 1.5, True, "10", None)
CLOCK_STEPS_SECONDS = (0, 1, 3, 20, 120, -2)
EXPIRY_OFFSETS_SECONDS = (None, None, 2, 10, 60)
PAST_EXPIRY_OFFSETS_SECONDS = (0, -1)
METADATA = ({"order": "o-17", "attempt": 2, "retry": False}, {"rate": 1.5}, {"bad key": 1})
TYPES = (
    "open_account", "freeze_account", "unfreeze_account", "close_account", "mint", "burn",
    "transfer", "transfer", "transfer", "hold", "hold", "hold", "release", "release",
    "cancel_hold", "stake_lock", "stake_lock", "stake_release", "stake_slash", "fee_transfer",
    "fee_burn", "promo_mint", "promo_burn",
)


class Scenario:
    """Draws commands that fit the current state often enough to be interesting: mostly well
    formed, on opened accounts, with fresh keys; the rare choices break one thing at a time."""

    def __init__(self, data: st.DataObject, model: ReferenceLedger, now: int) -> None:
        self.data = data
        self.model = model
        self.now = now
        self.own_ids = [account_id_for("EUR", did) for did in OWN_DIDS]
        self.odd_ids = (model.issuance, model.fee_pool, FOREIGN_ID, UNOPENED_ID)
        self.keys = itertools.count()
        self.history: list[Command] = []
        self.malformed: list[Command] = []
        self.atomic_history: list[Request] = []
        # Chains of the last group that failed, and the failing command's index.
        self.failed_chains: list[tuple[Request, int]] = []
        self.placed_holds: list[str] = []  # by this group, not yet in the model

    def draw(self, strategy: st.SearchStrategy) -> Any:
        return self.data.draw(strategy)

    def pick(self, options: Any) -> Any:
        return self.draw(st.sampled_from(options))

    def rarely(self, one_in: int = 8) -> bool:
        # Shrinks towards False: a failing example keeps only the odd choices it needs.
        return self.draw(st.integers(0, one_in - 1)) == one_in - 1

    def account(self) -> str:
        return self.pick(self.odd_ids) if self.rarely(6) else self.pick(self.own_ids)

    def preferred(self, candidates: list[str], fallback: Any) -> Any:
        """Mostly one of `candidates` (drawn from the model's state), else `fallback`."""
        return self.pick(sorted(candidates)) if candidates and not self.rarely(4) else fallback

    def holding(self, bucket: str) -> list[str]:
        return [i for i, a in self.model.books.accounts.items()
                if a.kind != "system" and a.balances[bucket] > 0]

    def open_hold_id(self) -> str:
        open_holds = [i for i, h in self.model.books.holds.items() if h.status == "open"]
        return self.preferred(open_holds + self.placed_holds, self.pick(HOLD_IDS))

    def place_hold(self) -> str:
        hold_id = self.pick(HOLD_IDS) if self.rarely(6) else f"hold-{next(self.keys)}"
        self.placed_holds.append(hold_id)
        return hold_id

    def amount(self) -> Any:
        if self.rarely(10):
            return self.pick((MAX_AMOUNT, *BAD_AMOUNTS))
        return self.draw(st.integers(1, 300))

    def debit(self, account: str | None, bucket: str) -> Any:
        """An amount that `account` can mostly afford from `bucket`."""
        model_account = self.model.books.accounts.get(account or self.model.fee_pool)
        balance = model_account.balances[bucket] if model_account else 0
        if balance > 0 and not self.rarely(3):
            return self.draw(st.integers(1, min(balance, MAX_AMOUNT)))
        return self.amount()

    def key(self) -> Any:
        return self.pick((None, "", "bad key")) if self.rarely(20) else f"k{next(self.keys)}"

    def stake_reference(self) -> dict[str, str]:
        if self.rarely(15):
            return {}
        return self.pick(({"escrow_id": "escrow-1"}, {"trial_id": "trial-9"}))

    def fields(self, ctype: str) -> dict[str, Any]:
        account = self.account()
        if ctype == "open_account":
            fields = {"did": self.pick(OWN_DIDS), "kind": self.pick(KINDS)}
            if self.rarely(4):
                fields.update(self.pick((
                    {"did": "did with space"}, {"tags": ["vip", "eu"]}, {"tags": ["bad tag"]},
                    {"safeguarding": "own_funds"}, {"safeguarding": "offshore"},
                    {"kind": "system"},
                )))
            return fields
        if ctype == "unfreeze_account":
            frozen = [i for i, a in self.model.books.accounts.items() if a.status == "frozen"]
            return {"account": self.preferred(frozen, account)}
        if ctype in ("freeze_account", "close_account"):
            return {"account": account}
        if ctype == "transfer":
            return {"account": account, "to": self.account(),
                    "amount": self.debit(account, "available"),
                    "netting_batch_id": self.pick((None, "net-2024-06-01"))}
        if ctype == "hold":
            offset = self.pick(
                PAST_EXPIRY_OFFSETS_SECONDS if self.rarely(10) else EXPIRY_OFFSETS_SECONDS
            )
            beneficiary = None if self.draw(st.booleans()) else self.account()
            if beneficiary == account and not self.rarely(4):
                beneficiary = None
            return {
                "account": account, "amount": self.debit(account, "available"),
                "hold_id": self.place_hold(),
                "beneficiary": beneficiary,
                "expires_at": None if offset is None else (
                    self.model.clock(self.now) + offset * SECOND
                ),
            }
        if ctype == "release":
            hold_id = self.open_hold_id()
            hold = self.model.books.holds.get(hold_id)
            needs_beneficiary = hold is not None and hold.beneficiary is None
            captured = None
            if self.rarely(2):
                captured = self.pick((0, 10**6)) if self.rarely(4) else self.draw(
                    st.integers(1, hold.amount if hold else 300)
                )
            if needs_beneficiary:
                beneficiary = None if self.rarely(4) else self.account()
            else:
                beneficiary = self.account() if self.rarely(4) else None
            return {"hold_id": hold_id, "amount": captured, "beneficiary": beneficiary}
        if ctype == "cancel_hold":
            return {"hold_id": self.open_hold_id()}
        if ctype in ("stake_lock", "stake_release", "stake_slash"):
            if ctype != "stake_lock":
                account = self.preferred(self.holding("bonded"), account)
            bucket = "available" if ctype == "stake_lock" else "bonded"
            fields = {"account": account, "amount": self.debit(account, bucket),
                      **self.stake_reference()}
            if ctype == "stake_slash" and self.rarely(3):
                fields["to"] = self.pick((self.model.fee_pool, self.account()))
            return fields
        if ctype == "fee_transfer":
            return {"account": account, "amount": self.debit(account, "available"),
                    "to": self.pick((self.model.fee_pool, self.account())) if self.rarely(3)
                    else None}
        if ctype == "fee_burn":
            payer = self.pick((self.model.fee_pool, account)) if self.rarely(3) else None
            return {"account": payer, "amount": self.debit(payer, "fee")}
        if ctype == "promo_burn":
            account = self.preferred(self.holding("promo"), account)
            return {"account": account, "amount": self.debit(account, "promo")}
        if ctype == "burn":
            return {"account": account, "amount": self.debit(account, "available")}
        return {"account": account, "amount": self.amount()}

    def new_command(self, client: str | None = None, key: Any = None) -> Command:
        types = TYPES
        if any(h.status == "open" for h in self.model.books.holds.values()):
            types += ("release", "release", "release", "cancel_hold")
        if self.holding("bonded"):
            types += ("stake_release", "stake_slash")
        ctype = "teleport" if self.rarely(40) else self.pick(types)
        fields = {} if ctype == "teleport" else self.fields(ctype)
        return Command(
            ctype, self.key() if key is None else key,
            client=self.pick(CLIENTS) if client is None else client,
            metadata=self.pick(METADATA) if self.rarely(8) else None, **fields,
        )

    def command(self) -> Command:
        if self.history and self.rarely(8):
            return self.pick(self.history)  # the same request again: a replay
        if self.history and self.rarely(12):
            earlier = self.pick(self.history)  # its key, another request: a conflict
            return self.new_command(earlier.client, earlier.idempotency_key)
        if self.malformed and self.rarely(4):
            earlier = self.pick(self.malformed)  # a schema error's key, retried: not recorded
            return self.new_command(earlier.client, earlier.idempotency_key)
        return self.new_command()

    def request(self) -> Request:
        if self.atomic_history and self.rarely(6):
            return self.pick(self.atomic_history)
        if self.failed_chains and self.rarely(3):
            # What a client does next: drop or replace the failing command, resubmit the rest.
            chain, failing = self.pick(self.failed_chains)
            commands = list(chain.commands)
            if self.draw(st.booleans()):
                commands[failing] = self.new_command()
            else:
                del commands[failing]
            return Request(commands, atomic=True)
        commands = [self.command() for _ in range(self.draw(st.integers(1, 3)))]
        return Request(commands, atomic=self.rarely(3))

    def opening(self) -> list[Request]:
        """Open the four accounts (kinds drawn) and fund them: the stage for everything else."""
        commands = [
            Command("open_account", f"open-{did}", client=CLIENTS[0], did=did,
                    kind=self.pick(("user", "user", "clearing", "reserve", "fee_pool")))
            for did in OWN_DIDS
        ] + [
            Command("mint", f"fund-{account}", client=CLIENTS[0], account=account,
                    amount=MAX_AMOUNT // 4 if self.rarely(10) else self.draw(st.integers(1, 1000)))
            for account in self.own_ids
        ]
        return [Request(commands)]

    def group(self) -> list[Request]:
        self.now += self.pick(CLOCK_STEPS_SECONDS) * SECOND
        self.placed_holds = []
        return [self.request() for _ in range(self.draw(st.integers(1, 3)))]

    def remember(self, requests: list[Request], codes: list[list[str]]) -> None:
        for request, request_codes in zip(requests, codes, strict=True):
            if request is requests[0]:
                self.failed_chains = []
            if request.atomic:
                self.atomic_history.append(request)
                failing = [i for i, code in enumerate(request_codes) if code not in ("ok", LINKED)]
                if failing:
                    self.failed_chains.append((request, failing[0]))
            for command, code in zip(request.commands, request_codes, strict=True):
                if not command.idempotency_key:
                    continue
                if code in SCHEMA_CODES:
                    self.malformed.append(command)
                else:
                    self.history.append(command)


def machine_view(state: LedgerState) -> dict[str, Any]:
    return {
        "accounts": {
            i: (a.kind, a.status, tuple(a.balances[b] for b in BUCKETS))
            for i, a in state.accounts.items()
        },
        "holds": {
            i: (h.account, h.beneficiary, h.amount, h.expires_at, h.status)
            for i, h in state.holds.items()
        },
        "next_seq": state.next_seq,
    }


def assert_money_invariants(state: LedgerState, events: list) -> None:
    for event in events:
        assert sum(leg["amount"] for leg in event.body["legs"]) == 0, event.body
    issuance = state.accounts[state.issuance_id]
    customer_money = 0
    total = 0
    for account in state.accounts.values():
        total += sum(account.balances.values())
        if account.kind != "system":
            assert min(account.balances.values()) >= 0, account.to_dict()
            customer_money += sum(account.balances[b] for b in BUCKETS if b != "promo")
    assert total == 0
    assert state.outstanding() == -issuance.balances["available"] == customer_money


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_groups_agree_with_the_reference_model_and_keep_the_invariants(
    data: st.DataObject, make_book: Any
) -> None:
    book = make_book()
    model = ReferenceLedger(
        issuance=book.issuance, fee_pool=book.fee_pool, account_id=book.id_of,
        foreign_ids=frozenset({FOREIGN_ID}), genesis_ts=book.now,
    )
    scenario = Scenario(data, model, book.now)
    replica = replay(book.events)
    for group in range(data.draw(st.integers(2, 12))):
        requests = scenario.opening() if group == 0 else scenario.group()
        seq_before, head_before = book.state.next_seq, book.state.head_hash

        outcome = book.execute(*requests, now=scenario.now)
        expected = model.execute(requests, scenario.now)

        got = [[(r.code.name, r.replayed, r.seq) for r in results] for results in outcome.results]
        assert got == [[(o.code, o.replayed, o.seq) for o in outs] for outs in expected]
        for results in outcome.results:
            for result in results:
                has_event = result.ok and not result.replayed
                assert (result.event is not None) == has_event
                if has_event:
                    assert result.event.seq == result.seq
        assert machine_view(book.state) == model.view()
        assert [e.seq for e in outcome.events] == list(range(seq_before, book.state.next_seq))
        assert_money_invariants(book.state, outcome.events)
        for event in outcome.events:
            body = canonical.decode(event.data)
            apply_event(replica, body)
            # The store's as-of index: each touched account's state right after the event.
            assert [i for i, _ in event.snapshots] == event_accounts(body)
            for account_id, snapshot in event.snapshots:
                assert replica.accounts[account_id].snapshot() == unpack_snapshot(snapshot)
        assert state_picture(replica) == state_picture(book.state)
        # The same keys are recorded, with the same first outcomes.
        assert {scope: (r.code, r.seq) for scope, r in book.known.items()} == {
            idempotency_scope(client, key): (ResultCode[code].value, seq)
            for (client, key), (_, code, seq) in model.books.records.items()
        }
        assert verify_chain(stored(outcome.events), head_before, seq_before) == (
            len(outcome.events), book.state.head_hash,
        )
        scenario.remember(requests, [[code for code, _, _ in results] for results in got])

    assert book.replayed_picture() == state_picture(book.state)
    assert book.verified_chain() == (book.state.next_seq, book.state.head_hash)
    event_ids = [event.body["id"] for event in book.events]
    assert event_ids == sorted(set(event_ids))  # unique, and ordered like their seqs


def good_chain(data: st.DataObject, book: Any) -> list[Command]:
    """Commands that all succeed in order on a book where alice and bob hold 1000 each."""
    alice, bob = book.id_of("did:ex:alice"), book.id_of("did:ex:bob")
    commands: list[Command] = []
    holds: list[tuple[str, str]] = []  # open holds of the chain: (hold id, beneficiary)
    for n in range(data.draw(st.integers(1, 6))):
        step = data.draw(st.sampled_from(
            ("transfer", "hold", "resolve", "stake_lock", "fee_transfer", "promo_mint", "open"),
        ))
        payer, payee = data.draw(st.permutations((alice, bob)))
        amount = data.draw(st.integers(1, 10))
        if step == "hold":
            beneficiary = data.draw(st.sampled_from((None, payee)))
            holds.append((f"hold-{n}", beneficiary or payee))
            offset = data.draw(st.sampled_from((None, 5, 50)))
            commands.append(book.command(
                "hold", account=payer, amount=amount, hold_id=f"hold-{n}",
                beneficiary=beneficiary,
                expires_at=None if offset is None else book.now + offset * SECOND,
            ))
        elif step == "resolve" and holds:
            hold_id, beneficiary = holds.pop(data.draw(st.integers(0, len(holds) - 1)))
            commands.append(data.draw(st.sampled_from((
                book.command("cancel_hold", hold_id=hold_id),
                book.command("release", hold_id=hold_id, beneficiary=beneficiary),
            ))))
        elif step == "open":
            commands.append(book.command("open_account", did=f"did:ex:new-{n}"))
        elif step == "stake_lock":
            commands.append(book.command(step, account=payer, amount=amount, trial_id="t-1"))
        elif step in ("fee_transfer", "promo_mint"):
            commands.append(book.command(step, account=payer, amount=amount))
        else:
            commands.append(book.command("transfer", account=payer, to=payee, amount=amount))
    return commands


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_rolled_back_chain_leaves_no_trace(data: st.DataObject, make_book: Any) -> None:
    """A chain that fails on its last command, then retried without it, leaves the shard as if
    only the retry had run: now, and after every hold it placed has expired."""
    tried, clean = make_book(), make_book()
    for book in (tried, clean):
        for did in ("did:ex:alice", "did:ex:bob"):
            book.fund(book.open(did), 1_000)
        book.open("did:ex:carol")
    chain = good_chain(data, tried)
    overdraft = tried.command("transfer", account=tried.id_of("did:ex:carol"),
                              to=tried.id_of("did:ex:alice"), amount=1)

    failed = tried.rejected(*chain, overdraft, atomic=True)
    retried = tried.submit(*chain, atomic=True)
    alone = clean.submit(*chain, atomic=True)
    for book in (tried, clean):
        book.execute(now=book.now + 1_000 * SECOND)

    assert [r.code.name for r in failed] == ["linked_command_failed"] * len(chain) + [
        "insufficient_funds"
    ]
    assert all(r.ok for r in retried) and all(r.ok for r in alone)
    assert state_picture(tried.state) == state_picture(clean.state)

    def without_ids(book: Any) -> list[dict]:
        return [{**e.body, "id": None, "prev_hash": None} for e in book.events]

    assert without_ids(tried) == without_ids(clean)
