"""C2SP signed notes: Go sumdb/note known answers, round trips and every rejection."""

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs.core.errors import (
    BadSignature,
    KeyIdMismatch,
    MalformedKey,
    MalformedNote,
    NoSignatureByKey,
    UnknownKeyName,
)
from proofs.core.note import (
    generate_signer,
    is_valid_key_name,
    key_id,
    sign_note,
    verifier_key,
    verify_note,
)

# Published in golang.org/x/mod/sumdb/note (package documentation and note_test.go).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
)
TEXT = "ledgerfs.example/shard-0\n42\nsome root\n"


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_signer("ledgerfs.example/shard-0")


def test_signing_reproduces_gos_published_note_byte_for_byte():
    # Ed25519 is deterministic, so the same key and text give Go's exact bytes.
    assert sign_note(GO_TEXT, GO_SIGNER) == GO_NOTE
    assert verify_note(GO_NOTE, GO_VERIFIER) == GO_TEXT


def test_key_id_computed_by_hand():
    public_key = base64.b64decode(GO_VERIFIER.split("+", 2)[2])[1:]
    digest = hashlib.sha256(b"PeterNeumann" + b"\x0a" + b"\x01" + public_key).digest()
    assert digest[:4] == bytes.fromhex("c74f20a3")
    assert key_id("PeterNeumann", public_key) == 0xC74F20A3
    assert verifier_key("PeterNeumann", public_key) == GO_VERIFIER


def test_signature_line_is_em_dash_name_and_base64_of_key_id_and_signature(keys):
    signer, verifier = keys
    note = sign_note(TEXT, signer)
    # The text keeps its final newline; one more newline makes the blank line.
    text_without_final_newline, _, line = note.partition("\n\n")
    assert text_without_final_newline + "\n" == TEXT
    assert line.startswith("\u2014 ledgerfs.example/shard-0 ") and line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == bytes.fromhex(verifier.split("+")[1])


def test_generated_keys_have_gos_formats(keys):
    signer, verifier = keys
    _, _, name, id_hex, seed_b64 = signer.split("+", 4)
    v_name, v_id_hex, public_b64 = verifier.split("+", 2)
    assert name == v_name == "ledgerfs.example/shard-0"
    assert id_hex == v_id_hex and len(id_hex) == 8 and id_hex == id_hex.lower()
    assert base64.b64decode(seed_b64)[0] == base64.b64decode(public_b64)[0] == 0x01
    assert len(base64.b64decode(seed_b64)) == len(base64.b64decode(public_b64)) == 33
    assert verifier == verifier_key(name, base64.b64decode(public_b64)[1:])


def test_round_trip(keys):
    signer, verifier = keys
    assert verify_note(sign_note(TEXT, signer), verifier) == TEXT


def test_a_changed_line_fails(keys):
    signer, verifier = keys
    note = sign_note(TEXT, signer)
    with pytest.raises(BadSignature):
        verify_note(note.replace("42", "43", 1), verifier)
    with pytest.raises(BadSignature):
        verify_note(GO_NOTE.replace("cryptography", "cryptographY"), GO_VERIFIER)


def test_a_different_key_with_the_same_name_fails_on_the_key_id(keys):
    signer, _ = keys
    _, other_verifier = generate_signer("ledgerfs.example/shard-0")
    with pytest.raises(KeyIdMismatch):
        verify_note(sign_note(TEXT, signer), other_verifier)


def test_a_key_with_another_name_fails(keys):
    signer, _ = keys
    with pytest.raises(UnknownKeyName):
        verify_note(sign_note(TEXT, signer), GO_VERIFIER)
    assert issubclass(UnknownKeyName, NoSignatureByKey)
    assert issubclass(KeyIdMismatch, NoSignatureByKey)


def test_a_forged_signature_under_the_right_key_id_fails(keys):
    signer, verifier = keys
    note = sign_note(TEXT, signer)
    head, name, blob_b64 = note[:-1].rsplit(" ", 2)
    blob = bytearray(base64.b64decode(blob_b64))
    blob[10] ^= 1
    forged = f"{head} {name} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(BadSignature):
        verify_note(forged, verifier)
    short = f"{head} {name} {base64.b64encode(bytes(blob[:40])).decode()}\n"
    with pytest.raises(BadSignature):
        verify_note(short, verifier)


def test_other_signers_are_ignored_in_any_order(keys):
    signer, verifier = keys
    other_signer, other_verifier = generate_signer("witness.example")
    ours = sign_note(TEXT, signer).split("\n\n")[1]
    theirs = sign_note(TEXT, other_signer).split("\n\n")[1]
    for block in (ours + theirs, theirs + ours):
        note = TEXT + "\n" + block
        assert verify_note(note, verifier) == TEXT
        assert verify_note(note, other_verifier) == TEXT


def test_the_first_signature_by_the_key_decides(keys):
    signer, verifier = keys
    good = sign_note(TEXT, signer).split("\n\n")[1]
    name_and_blob = good[len("\u2014 ") : -1]
    name, blob_b64 = name_and_blob.split(" ")
    blob = bytearray(base64.b64decode(blob_b64))
    blob[-1] ^= 1
    bad = f"\u2014 {name} {base64.b64encode(bytes(blob)).decode()}\n"
    assert verify_note(TEXT + "\n" + good + bad, verifier) == TEXT
    with pytest.raises(BadSignature):
        verify_note(TEXT + "\n" + bad + good, verifier)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n"),  # no blank line before the signatures
        lambda n: n[:-1],  # signature line without its newline
        lambda n: n + "\n",  # blank line after the signatures
        lambda n: n.replace("\u2014 ", "- "),  # hyphen instead of em dash
        lambda n: n.replace("\u2014 ", "\u2014"),  # no space after the dash
        lambda n: n.replace("PeterNeumann x08", "PeterNeumann  x08"),  # two spaces
        lambda n: n[: n.rindex(" ") + 1] + "!!!!\n",  # not base64
        lambda n: n[: n.rindex(" ") + 1] + "\n",  # empty signature
        lambda n: n[: n.rindex(" ") + 1] + "AAAA\n",  # shorter than key id + 1 byte
        lambda n: n.replace("problem,", "problem,\t"),  # control character
        lambda n: n.replace("problem,", "problem,\r"),
        lambda n: n.replace("problem,", "problem,\ud800"),  # not encodable as UTF-8
        lambda n: n + "\u2014 PeterNeumann\n",  # name without signature
    ],
)
def test_malformed_notes_are_rejected(mangle):
    with pytest.raises(MalformedNote):
        verify_note(mangle(GO_NOTE), GO_VERIFIER)


def test_too_many_signatures_are_rejected(keys):
    signer, verifier = keys
    line = sign_note(TEXT, signer).split("\n\n")[1]
    verify_note(TEXT + "\n" + line * 100, verifier)
    with pytest.raises(MalformedNote):
        verify_note(TEXT + "\n" + line * 101, verifier)


@pytest.mark.parametrize(
    "text",
    ["", "no final newline", "\n", "a\n\nb\n", "\nleading blank line\n", "tab\there\n", "\ud800\n"],
)
def test_texts_that_cannot_be_signed(text, keys):
    signer, _ = keys
    with pytest.raises(MalformedNote):
        sign_note(text, signer)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong id
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # 7 digits
        "PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # not hex
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # bad base64
        "PeterNeumann+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong length
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm 0x02
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # empty name
        GO_SIGNER,  # a signer key is not a verifier key
    ],
)
def test_malformed_verifier_keys_are_rejected(key):
    with pytest.raises(MalformedKey):
        verify_note(GO_NOTE, key)


def test_uppercase_key_id_is_accepted_like_go():
    assert verify_note(GO_NOTE, GO_VERIFIER.replace("c74f20a3", "C74F20A3")) == GO_TEXT


@pytest.mark.parametrize(
    "key",
    [
        GO_VERIFIER,  # a verifier key is not a signer key
        GO_SIGNER.replace("PRIVATE+KEY", "PRIVATE+KEYS"),
        GO_SIGNER.replace("c74f20a3", "c74f20a4"),  # id does not match the derived key
        GO_SIGNER.replace("AYEK", "AoEK"),  # algorithm byte 0x02
        GO_SIGNER.replace("+PeterNeumann+", "+Peter\u00a0Neumann+"),  # no-break space
    ],
)
def test_malformed_signer_keys_are_rejected(key):
    with pytest.raises(MalformedKey):
        sign_note(GO_TEXT, key)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("PeterNeumann", True),
        ("ledgerfs.example/shard-0", True),
        ("sum.golang.org", True),
        ("caf\u00e9", True),
        ("", False),
        ("a b", False),
        ("a+b", False),
        ("a\tb", False),
        ("a\u2003b", False),  # em space
        ("a\u0085b", False),  # next line
    ],
)
def test_key_name_rules(name, valid):
    assert is_valid_key_name(name) is valid


def test_generating_a_key_with_an_invalid_name_fails():
    with pytest.raises(MalformedKey):
        generate_signer("two words")


@settings(max_examples=30)
@given(
    st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs", "Cc")),
            min_size=1,
            max_size=30,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_property_any_signable_text_round_trips(lines):
    signer, verifier = generate_signer("property.example")
    text = "".join(line + "\n" for line in lines)
    assert verify_note(sign_note(text, signer), verifier) == text
