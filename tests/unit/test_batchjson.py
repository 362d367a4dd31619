"""The native batch codec (`ledger/api/_batchjson.c`) against the Python path it stands in for.

`batch_rows` must send the writer exactly the commands `batch_parse` + `batch_commands` would
(compared after both went through the bus codec, as the writer receives them), or decline;
it must take the common shapes, or it saves nothing. `results_json` and `reply_json` must
write the very bytes the Python writer of the response writes.
"""

from __future__ import annotations

import hashlib
import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiaccess.errors import ApiError
from ledger.api.batch import (
    batch_commands,
    batch_ledger,
    batch_parse,
    batch_rows,
    reply_json,
    results_json,
)
from ledger.api.execution import idempotency_keys_normalize
from ledger.api.schemas import MAX_BATCH_COMMANDS
from ledger.core.codes import ResultCode
from ledger.core.commands import Request
from ledger.core.machine import Event, Result
from ledger.core.state import account_id_for
from ledger.transport.codec import reply_encode, reply_header, reply_results, request_decode
from ledger.transport.codec import request_encode as encode

CLIENT = "cli_0123"
ALICE = account_id_for("EUR", "did:example:alice")
BOB = account_id_for("EUR", "did:example:bob")


def sent(request) -> Request:
    """What the writer decodes from a bus request carrying `request`."""
    return request_decode(encode("r-1", "reply-key", 0, request))[3]


def python_path(body: bytes) -> tuple[str, Request] | None:
    """What the fast lane sent before `batch_rows`; None where Django answers instead."""
    try:
        items, atomic, ledger = batch_parse(body)
        ledger = batch_ledger(items, ledger)
    except ApiError:
        return None
    commands = batch_commands(items, CLIENT)
    if any(command.type == "open_account" for command in commands):
        return None
    idempotency_keys_normalize(commands)
    return ledger, Request(commands, atomic)


def assert_same_as_python(body: bytes) -> bool:
    """Whether the native reader took `body`; fails when what it took differs."""
    native = batch_rows(body, CLIENT)
    if native is None:
        return False
    reference = python_path(body)
    assert reference is not None, "taken natively, but the Python path refuses it"
    ledger, encoded = native
    assert ledger == reference[0]
    got, expected = sent(encoded), sent(reference[1])
    assert (got.commands, got.atomic) == (expected.commands, expected.atomic)
    return True


# -- bodies taken ------------------------------------------------------------------------------

PLAIN = {"idempotency_key": "k-1", "from": ALICE, "to": BOB, "amount": 250}


@pytest.mark.parametrize("body", [
    orjson.dumps({"transfers": [PLAIN, {**PLAIN, "idempotency_key": "k-2", "amount": 1}]}),
    json.dumps({"atomic": True, "transfers": [PLAIN], "ledger": "EUR"}, indent=2).encode(),
    b' {"transfers" :\n[ {"to":"%s", "amount" : 9 ,"from":"%s","idempotency_key":"k"} ] } '
    % (BOB.encode(), ALICE.encode()),
    orjson.dumps({"transfers": [{"type": "mint", "idempotency_key": "m", "account": ALICE,
                                 "amount": 5}], "client_note": "ignored", "atomic": False}),
    orjson.dumps({"ledger": None, "transfers": [
        {"type": "hold", "idempotency_key": "h", "account": ALICE, "beneficiary": BOB,
         "amount": -3, "hold_id": "hld_eur_1", "netting_batch_id": "n-1", "extra": None},
        {"type": "transfer", "idempotency_key": 7, "from": None, "account": ALICE, "to": BOB,
         "amount": 0, "metadata": None, "expires_at": None},
        {}]}),
    orjson.dumps({"ledger": "USD", "transfers": [PLAIN]}),  # the given ledger wins
])
def test_the_common_shapes_are_read_natively_as_python_reads_them(body: bytes) -> None:
    assert assert_same_as_python(body)


def test_without_a_ledger_the_first_id_naming_one_decides() -> None:
    body = orjson.dumps({"transfers": [{"idempotency_key": "k", "from": "x", "to": "hld_usd_1",
                                        "amount": 1}, PLAIN]})
    assert assert_same_as_python(body)
    assert batch_rows(body, CLIENT)[0] == "USD"


# -- bodies declined (the Python path answers them) ---------------------------------------------

@pytest.mark.parametrize("body", [
    b"",
    b"not json",
    b'{"transfers": []}',
    b'{"transfers": [' + b",".join([orjson.dumps(PLAIN)] * (MAX_BATCH_COMMANDS + 1)) + b"]}",
    b'{"transfers": [{"from": "%s", "from": "%s"}]}' % (ALICE.encode(), BOB.encode()),
    b'{"transfers": [], "transfers": [%s]}' % orjson.dumps(PLAIN),
    orjson.dumps({"transfers": [{**PLAIN, "account": ALICE}]}),  # both from and account
    orjson.dumps({"transfers": [{**PLAIN, "type": "open_account", "did": "did:x"}]}),
    orjson.dumps({"transfers": [{**PLAIN, "metadata": {"order": 1}}]}),
    orjson.dumps({"transfers": [{**PLAIN, "expires_at": "2030-01-01T00:00:00Z"}]}),
    orjson.dumps({"transfers": [{**PLAIN, "amount": 1.5}]}),
    orjson.dumps({"transfers": [{**PLAIN, "amount": 10**18}]}),  # 19 digits
    orjson.dumps({"transfers": [{**PLAIN, "idempotency_key": "caf\u00e9"}]}),
    b'{"transfers": [{"idempotency_key": "a\\"b", "from": "%s"}]}' % ALICE.encode(),
    orjson.dumps({"transfers": [{**PLAIN, "type": 3}]}),
    orjson.dumps({"transfers": [PLAIN], "atomic": None}),
    orjson.dumps({"transfers": [PLAIN], "ledger": 5}),
    orjson.dumps({"transfers": [PLAIN], "options": {"a": 1}}),
    orjson.dumps({"transfers": [PLAIN]}) + b" x",
    orjson.dumps({"transfers": [{**PLAIN, "from": "acc_EUR_1", "to": "nothing"}]}),
    orjson.dumps({"transfers": [PLAIN, [1]]}),
])
def test_other_bodies_are_left_to_the_python_path(body: bytes) -> None:
    assert batch_rows(body, CLIENT) is None


_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=12)
_scalars = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False)
            | _text | st.text(max_size=4)
            | st.sampled_from([ALICE, BOB, "hld_gbp_9", "transfer", "mint", "open_account"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=2)
                       | st.dictionaries(_text, inner, max_size=2), max_leaves=4)
_FIELDS = ["type", "idempotency_key", "from", "account", "to", "beneficiary", "amount", "hold_id",
           "expires_at", "escrow_id", "trial_id", "netting_batch_id", "metadata", "did", "x"]
_items = st.dictionaries(st.sampled_from(_FIELDS), _scalars, max_size=7) | _values
_bodies = st.fixed_dictionaries(
    {"transfers": st.lists(_items, max_size=5)},
    optional={"atomic": st.booleans() | st.none(), "ledger": st.sampled_from(["EUR", None, 1]),
              "note": _values},
)


# Mostly values the native reader takes, so that most of these bodies are taken.
_unescaped = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e,
                                            blacklist_characters='"\\'), max_size=12)
_plain = (st.none() | st.integers(-10**18 + 1, 10**18 - 1) | _unescaped
          | st.sampled_from([ALICE, BOB, "hld_gbp_9", "evt_x_1", "acc__1", "mint", "hold"]))
_plain_items = st.fixed_dictionaries(
    {"from": st.sampled_from([ALICE, BOB, "hld_usd_1", "x"])},
    optional={"type": st.sampled_from(["transfer", "mint", "hold", "open_account"]),
              **{name: _plain for name in ["idempotency_key", "to", "beneficiary", "amount",
                                           "hold_id", "escrow_id", "trial_id",
                                           "netting_batch_id", "did", "x", "account"]}},
)
_plain_bodies = st.fixed_dictionaries(
    {"transfers": st.lists(_plain_items, min_size=1, max_size=5)},
    optional={"atomic": st.booleans(), "ledger": st.sampled_from(["EUR", None]), "note": _plain},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies | _plain_bodies, st.sampled_from([None, 2]), st.booleans())
def test_any_body_is_read_as_python_reads_it_or_declined(body, indent, sort) -> None:
    assert_same_as_python(json.dumps(body, indent=indent, sort_keys=sort).encode())


# -- responses ---------------------------------------------------------------------------------

def event(seq: int, text: str = "x") -> Event:
    data = orjson.dumps({"seq": seq, "text": text}, option=orjson.OPT_SORT_KEYS)
    return Event(seq, "transfer", None, data, hashlib.sha256(data).digest())


_results = st.lists(st.one_of(
    st.builds(lambda seq, replayed, text: Result(ResultCode.ok, event(seq, text), replayed, seq),
              st.integers(0, 10**12), st.booleans(), st.text(max_size=5)),
    st.builds(lambda code, replayed: Result(code, None, replayed),
              st.sampled_from([c for c in ResultCode if c != ResultCode.ok]), st.booleans()),
), max_size=6)


@settings(max_examples=200, deadline=None)
@given(_results)
def test_the_response_is_the_bytes_python_writes(results: list[Result]) -> None:
    expected = results_json(results, None, native=False)
    assert results_json(results, None) == expected
    data = reply_encode("r-1", results, lambda seq: None, 3)
    _, _, rows, offset = reply_header(data)
    assert reply_json(rows, data, offset) == expected
    assert results_json(reply_results(rows, data, offset), None, native=False) == expected


def test_a_replayed_success_without_its_event_is_left_to_the_python_path() -> None:
    replay = Result(ResultCode.ok, None, True, 5)
    from ledger.api import _batchjson

    assert _batchjson.results([Result(ResultCode.ok, event(1)), replay]) is None
    data = reply_encode("r-1", [replay], lambda seq: None, 5)  # the log lacks it too
    _, _, rows, offset = reply_header(data)
    assert reply_json(rows, data, offset) is None
