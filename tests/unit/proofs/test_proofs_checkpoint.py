"""Checkpoint bodies: exact format, round trips, signing, chaining and strict parsing."""

import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs.core.checkpoint import (
    GENESIS_PREV_HASH,
    Checkpoint,
    note_hash,
    open_checkpoint,
    sign_checkpoint,
)
from proofs.core.errors import BadSignature, MalformedCheckpoint, UnknownKeyName
from proofs.core.note import generate_signer, sign_note
from proofs.core.sumtree import SUM_LIMIT

ORIGIN = "ledgerfs.example/shard-0"
CHECKPOINT = Checkpoint(
    origin=ORIGIN,
    tree_size=10,
    root_hash=bytes(range(32)),
    height=3,
    state_root=b"\x01" * 32,
    state_sum=12345,
    prev_hash=GENESIS_PREV_HASH,
    time_ns=1763703371123456789,
)
BODY = (
    "ledgerfs.example/shard-0\n"
    "10\n"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    "height 3\n"
    "state-root AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
    "state-sum 12345\n"
    "prev AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    "time 1763703371123456789\n"
)


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_signer(ORIGIN)


def test_body_has_the_documented_lines():
    assert CHECKPOINT.body() == BODY


def test_genesis_prev_is_44_characters_of_zero_base64():
    assert "prev " + "A" * 43 + "=\n" in BODY


def test_parse_inverts_body():
    assert Checkpoint.parse(BODY) == CHECKPOINT


def test_sign_and_open(keys):
    signer, verifier = keys
    note = sign_checkpoint(CHECKPOINT, signer)
    assert note.startswith(BODY + "\n\u2014 " + ORIGIN + " ")
    assert open_checkpoint(note, verifier) == CHECKPOINT


def test_open_rejects_a_tampered_or_foreign_checkpoint(keys):
    signer, verifier = keys
    note = sign_checkpoint(CHECKPOINT, signer)
    with pytest.raises(BadSignature):
        open_checkpoint(note.replace("state-sum 12345", "state-sum 12344"), verifier)
    other_signer, _ = generate_signer("someone.else")
    with pytest.raises(UnknownKeyName):
        open_checkpoint(sign_checkpoint(CHECKPOINT, other_signer), verifier)


def test_open_checks_the_signature_before_the_body(keys):
    signer, verifier = keys
    note = sign_note("not a checkpoint\n", signer)
    with pytest.raises(MalformedCheckpoint):
        open_checkpoint(note, verifier)


def test_checkpoints_chain_through_the_hash_of_the_previous_note(keys):
    signer, verifier = keys
    first = sign_checkpoint(CHECKPOINT, signer)
    second = dataclasses.replace(
        CHECKPOINT,
        tree_size=20,
        height=4,
        prev_hash=note_hash(first),
        time_ns=CHECKPOINT.time_ns + 1,
    )
    opened = open_checkpoint(sign_checkpoint(second, signer), verifier)
    assert opened.prev_hash == hashlib.sha256(first.encode("utf-8")).digest()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n10\n", "\n010\n"),  # leading zero
        ("\n10\n", "\n+10\n"),
        ("\n10\n", "\n 10\n"),
        ("\n10\n", "\n1_0\n"),
        ("\n10\n", "\n\uff11\uff10\n"),  # full-width digits
        ("\n10\n", "\n-10\n"),
        ("height 3", "height  3"),
        ("height 3", "height 03"),
        ("height 3", "Height 3"),
        ("height 3", "height\t3"),
        ("height 3", "height 3 "),
        ("state-sum 12345", "state-sum -12345"),
        ("state-sum 12345", f"state-sum {SUM_LIMIT}"),
        ("time 1763703371123456789", "time 2025-11-21T05:36:11.123456789Z"),
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
        ),
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",
        ),
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",
        ),
        (
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",
        ),
        ("prev AAAA", "prev  AAAA"),
        ("ledgerfs.example/shard-0\n", "ledgerfs example\n"),
        ("ledgerfs.example/shard-0\n", "\n"),
        ("time 1763703371123456789\n", "time 1763703371123456789"),  # no final newline
        ("time 1763703371123456789\n", "time 1763703371123456789\nextra line\n"),
        ("time 1763703371123456789\n", "time 1763703371123456789\n\n"),
        ("height 3\n", ""),  # missing extension line
        ("height 3\nstate-root", "state-root"),
    ],
)
def test_parse_rejects_malformed_bodies(old, new):
    assert old in BODY
    with pytest.raises(MalformedCheckpoint):
        Checkpoint.parse(BODY.replace(old, new, 1))


def test_parse_rejects_reordered_extension_lines():
    lines = BODY.splitlines(keepends=True)
    lines[3], lines[4] = lines[4], lines[3]
    with pytest.raises(MalformedCheckpoint):
        Checkpoint.parse("".join(lines))


@pytest.mark.parametrize(
    "changes",
    [
        {"origin": ""},
        {"origin": "has space"},
        {"origin": "has+plus"},
        {"tree_size": -1},
        {"tree_size": True},
        {"height": 1.0},
        {"time_ns": -5},
        {"root_hash": b"\x00" * 31},
        {"state_root": "00" * 32},
        {"prev_hash": b""},
        {"state_sum": -1},
        {"state_sum": SUM_LIMIT},
    ],
)
def test_invalid_checkpoint_values_are_refused(changes):
    with pytest.raises(MalformedCheckpoint):
        dataclasses.replace(CHECKPOINT, **changes)


@given(
    tree_size=st.integers(0, 2**64),
    height=st.integers(0, 2**64),
    state_sum=st.integers(0, SUM_LIMIT - 1),
    time_ns=st.integers(0, 2**64),
    hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=3, max_size=3),
)
def test_property_body_and_parse_round_trip(tree_size, height, state_sum, time_ns, hashes):
    checkpoint = Checkpoint(
        ORIGIN, tree_size, hashes[0], height, hashes[1], state_sum, hashes[2], time_ns
    )
    assert Checkpoint.parse(checkpoint.body()) == checkpoint
