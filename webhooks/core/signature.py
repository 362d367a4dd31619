"""HMAC-SHA256 signatures of webhook deliveries, timestamped against replays.

Header: `LedgerFS-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(secret, "<t>." + body) over the exact body bytes. A receiver recomputes it with
the subscription's secret, compares in constant time, and refuses timestamps too far from its
clock (`verify`). `verify` accepts any one of several `v1=` values, so a receiver written
this way keeps working if deliveries are ever signed with an old and a new secret at once.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "LedgerFS-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, *, now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` signs `body` with `secret` at a time within `tolerance_seconds` of
    `now` (unix seconds). Never raises on a malformed header."""
    timestamp = None
    candidates = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
