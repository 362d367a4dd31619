"""Canonical JSON equals an independent RFC 8785-style encoder, byte for byte.

The reference encoder below is written from RFC 8785 (JSON Canonicalization Scheme): object
members sorted by the UTF-16 code units of their names, no whitespace, strings escaped as
ECMAScript's JSON.stringify does (\\b \\t \\n \\f \\r \\" \\\\, other control characters as
lowercase \\u00xx, everything else raw, UTF-8 encoded). Numbers are integers only, written in
full: this is where the ledger departs from RFC 8785 on purpose, which would print integers
beyond 2**53 through IEEE-754 doubles and lose digits of large amounts.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import canonical

SHORT_ESCAPES = {
    "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\",
}


def _string(text: str) -> str:
    out = []
    for character in text:
        if character in SHORT_ESCAPES:
            out.append(SHORT_ESCAPES[character])
        elif ord(character) < 0x20:
            out.append(f"\\u{ord(character):04x}")
        else:
            out.append(character)
    return '"' + "".join(out) + '"'


def _utf16_order(name: str) -> bytes:
    return name.encode("utf-16-be")


def _text(value: object) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return _string(value)
    if type(value) is list:
        return "[" + ",".join(_text(item) for item in value) + "]"
    if type(value) is dict:
        names = sorted(value, key=_utf16_order)
        return "{" + ",".join(f"{_string(n)}:{_text(value[n])}" for n in names) + "}"
    raise TypeError(type(value))


def reference_encode(value: object) -> bytes:
    return _text(value).encode("utf-8")


# Names from the whole BMP (except surrogates): there, code point order and UTF-16 order agree.
# Event bodies only use ASCII names and metadata names are ASCII tokens.
names = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=8)
strings = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
integers = st.integers(min_value=-(2**63), max_value=2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | integers | strings,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(names, inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_encoding_equals_the_reference_encoder(value: object) -> None:
    assert canonical.encode(value) == reference_encode(value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_decoding_the_canonical_bytes_gives_the_value_back(value: object) -> None:
    assert canonical.decode(canonical.encode(value)) == value


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_every_string_is_escaped_like_json_stringify(text: str) -> None:
    assert canonical.encode(text) == reference_encode(text)


@pytest.mark.parametrize(("value", "expected"), [
    ({"b": 1, "a": [True, None, "x"]}, b'{"a":[true,null,"x"],"b":1}'),
    ("\b\t\n\f\r\"\\", b'"\\b\\t\\n\\f\\r\\"\\\\"'),
    ("\x00\x1f", b'"\\u0000\\u001f"'),
    ("\x7f\u2028\u2029", "\"\x7f\u2028\u2029\"".encode()),
    ("€ and 😀", '"€ and 😀"'.encode()),
    ({"é": 1, "z": 2, "e": 3}, '{"e":3,"z":2,"é":1}'.encode()),
    (2**63 - 1, b"9223372036854775807"),
    (-(2**63), b"-9223372036854775808"),
    ({}, b"{}"),
    ([], b"[]"),
], ids=repr)
def test_known_encodings(value: object, expected: bytes) -> None:
    assert canonical.encode(value) == expected
