"""A hold created, rolled back and created again expires exactly once.

Found by the event-store replay tests: the expiry heap is not journalled, so an atomic request
that created a hold and then failed left a heap entry behind; creating the same hold id again
added a second one, and the hold expired twice, releasing its amount twice.
"""

from ledger.core.commands import Command, Request
from ledger.core.machine import StateMachine
from ledger.core.state import LedgerState, account_id_for

SECOND = 1_000_000_000


def test_hold_recreated_after_rollback_expires_once():
    state = LedgerState("EUR")
    machine = StateMachine(state)
    machine.genesis(1)
    known: dict = {}
    alice = account_id_for("EUR", "did:alice")
    machine.execute([Request([Command("open_account", "o", did="did:alice"),
                              Command("mint", "m", account=alice, amount=100)])], 2, known)
    hold = Command("hold", "h1", account=alice, amount=40, hold_id="hld_eur_x",
                   expires_at=10 * SECOND)
    failing = Command("transfer", "t1", account=alice, to="acc_eur_missing", amount=1)
    outcome = machine.execute([Request([hold, failing], atomic=True)], 3, known)
    assert [r.code.name for r in outcome.results[0]] == ["linked_command_failed",
                                                         "account_not_found"]
    retry = Command("hold", "h2", account=alice, amount=40, hold_id="hld_eur_x",
                    expires_at=10 * SECOND)
    assert machine.execute([Request([retry])], 4, known).results[0][0].ok

    outcome = machine.execute([], 11 * SECOND, known)

    assert [e.body["type"] for e in outcome.events] == ["hold_expired"]
    assert state.accounts[alice].balances["available"] == 100
    assert state.accounts[alice].balances["held"] == 0
