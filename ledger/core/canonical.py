"""Canonical JSON: the exact bytes that are hashed, stored and served to verifiers.

Compatible with RFC 8785 for the values events contain: object keys sorted (events only use
ASCII keys, so byte order equals the UTF-16 order RFC 8785 asks for), no whitespace, UTF-8,
strings escaped the way RFC 8785 prescribes, integers only (never floats). orjson produces
exactly this form; `tests/unit/test_canonical.py` checks it against a reference encoder.
"""

from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS


class CanonicalError(ValueError):
    """A value that has no canonical form here (floats, non-string keys, ...)."""


def encode(value: Any) -> bytes:
    """Canonical bytes of a JSON value made of dicts, lists, str, int, bool and None."""
    # orjson returns an over-allocated bytes object; keeping thousands of them alive (the
    # writer holds a whole group) fragments the heap and makes each call 3-10x slower.
    # Copying into an exact-size object and dropping the original avoids that.
    return bytes(memoryview(orjson.dumps(value, option=_OPTIONS)))


def encode_checked(value: Any) -> bytes:
    """Like `encode`, but rejects floats, non-string keys, integers outside 64 bits and
    strings that are not valid Unicode (lone surrogates) with `CanonicalError`."""
    _check(value)
    try:
        return encode(value)
    except TypeError as exc:  # orjson's error for unencodable values
        raise CanonicalError(str(exc)) from None


def decode(data: bytes) -> Any:
    return orjson.loads(data)


def _check(value: Any) -> None:
    if isinstance(value, float):
        raise CanonicalError("floats have no canonical form; use integers in minor units")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"object keys must be strings, got {type(key).__name__}")
            _check(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check(item)
