"""Canonical text encodings shared by the proof formats: lowercase hex, padded base64, decimal.

Invariant: each decoder accepts exactly one spelling per value (re-encoding a decoded value
gives back the input), so two honest parties can never disagree about the bytes behind a
string and a signed text has only one valid reading. Decoders raise `ValueError`; callers
turn it into their own `ProofError` subclass.
"""

import base64
import binascii
import re

HASH_SIZE = 32

_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HASH_HEX = re.compile(r"[0-9a-f]{64}")


def decode_decimal(text: str) -> int:
    """Parse a non-negative ASCII decimal without sign, spaces, underscores or leading zeros."""
    # int() alone would also accept "+1", " 1", "1_0" and non-ASCII digits.
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a canonical decimal: {text!r}")
    return int(text)


def decode_hash_hex(text: str) -> bytes:
    """Parse a 32-byte hash written as exactly 64 lowercase hex digits."""
    if not isinstance(text, str) or not _HASH_HEX.fullmatch(text):
        raise ValueError(f"not a 64-digit lowercase hex hash: {text!r}")
    return bytes.fromhex(text)


def encode_base64(data: bytes) -> str:
    """Standard, padded base64 (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def decode_base64(text: str) -> bytes:
    """Parse standard padded base64, rejecting stray characters and non-zero padding bits."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("base64 must be an ASCII string")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as err:
        raise ValueError(f"invalid base64: {err}") from err
    if encode_base64(data) != text:
        raise ValueError(f"non-canonical base64: {text!r}")
    return data
