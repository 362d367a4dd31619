"""The bus codec: a request reaches the writer with every command field as it was given."""

from __future__ import annotations

import pytest

from ledger.core.commands import Command, Request
from ledger.transport.codec import CodecError, request_decode, request_encode


def test_a_request_round_trips_with_every_field():
    commands = [
        Command("open_account", "k-1", "client", did="did:x", kind="user", tags=["a", "b"],
                safeguarding="safeguarded", metadata={"note": "é", "n": [1, 2]}),
        Command("hold", "k-2", "client", account="acc_eur_a", beneficiary="acc_eur_b",
                amount=7, expires_at=123, escrow_id="e", trial_id="t", netting_batch_id="n"),
        Command("release", "k-3", "client", hold_id="hold_eur_x", amount=2),
        # Malformed values travel unchanged; the writer rejects them, not the codec.
        Command("transfer", "k-4", "client", account="acc_eur_a", to="acc_eur_b", amount="12"),
        Command("transfer", "k-5", "client", account="acc_eur_a", to="acc_eur_b", amount=2**70),
    ]
    request = Request(commands, atomic=True)
    request_id, reply_to, deadline_ms, decoded = request_decode(
        request_encode("r-1", "reply:1", 42, request)
    )
    assert (request_id, reply_to, deadline_ms) == ("r-1", "reply:1", 42)
    assert decoded == request


def test_a_command_row_of_the_wrong_length_is_not_a_request():
    encoded = request_encode("r-1", "reply:1", 42, Request([Command("transfer", "k", "c")]))
    short = encoded.replace(b',null]]]', b']]]', 1)  # the last field of the only row dropped
    assert short != encoded
    with pytest.raises(CodecError, match="not a bus request"):
        request_decode(short)
