"""Webhook signatures (webhooks.core.signature): what a receiver's check accepts and refuses."""

import hashlib
import hmac

import pytest

from webhooks.core.signature import signature_header, verify

SECRET = "whsec_unit"
BODY = b'{"type":"transfer","seq":7}'
NOW = 1_800_000_000


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, NOW, BODY) == f"t={NOW},v1={expected}"


def test_a_genuine_delivery_verifies() -> None:
    assert verify(SECRET, signature_header(SECRET, NOW, BODY), BODY, now=NOW + 299)


@pytest.mark.parametrize(("header", "body", "now"), [
    (signature_header(SECRET, NOW, BODY), BODY + b" ", NOW),          # body altered
    (signature_header("whsec_other", NOW, BODY), BODY, NOW),          # another secret
    (signature_header(SECRET, NOW, BODY), BODY, NOW + 301),           # replayed later
    (signature_header(SECRET, NOW, BODY).replace("t=1800000000", "t=1800000001"), BODY, NOW),
    ("v1=abc", BODY, NOW), ("", BODY, NOW), ("t=x,v1=,,=", BODY, NOW),  # malformed
])
def test_anything_else_is_refused(header: str, body: bytes, now: int) -> None:
    assert not verify(SECRET, header, body, now=now)


def test_any_of_several_signatures_may_match_during_a_secret_rotation() -> None:
    old = signature_header("whsec_old", NOW, BODY)
    new = signature_header(SECRET, NOW, BODY).split(",")[1]
    assert verify(SECRET, f"{old},{new}", BODY, now=NOW)
