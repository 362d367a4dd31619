"""Canonical JSON: the exact bytes that are hashed, stored and served to verifiers.

Compatible with RFC 8785 for the values events contain: object keys sorted (events only use
ASCII keys, so byte order equals the UTF-16 order RFC 8785 asks for), no whitespace, UTF-8,
strings escaped the way RFC 8785 prescribes, integers only (never floats: the state machine's
shape check refuses them before anything is encoded). orjson produces exactly this form;
`tests/unit/core/test_canonical.py` checks it against a reference encoder.
"""

from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS


def encode(value: Any) -> bytes:
    """Canonical bytes of a JSON value made of dicts, lists, str, int, bool and None."""
    # orjson returns an over-allocated bytes object; keeping thousands of them alive (the
    # writer holds a whole group) fragments the heap and makes each call 3-10x slower.
    # Copying into an exact-size object and dropping the original avoids that.
    return bytes(memoryview(orjson.dumps(value, option=_OPTIONS)))


def decode(data: bytes) -> Any:
    return orjson.loads(data)
