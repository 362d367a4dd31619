"""API-key format and scopes, without a database."""

import pytest

from apiaccess.keys import ApiKeyError, key_hash, key_prefix, scopes_parse


def test_a_well_formed_key_yields_its_prefix() -> None:
    assert key_prefix("lfs_0123456789ab_s3cr3t-with_underscores") == "0123456789ab"


@pytest.mark.parametrize("raw_key", [
    "", "lfs", "lfs_0123456789ab", "lfs_0123456789ab_", "xyz_0123456789ab_secret",
    "lfs_0123456789AB_secret", "lfs_0123456789a_secret", "lfs_0123456789abc_secret",
    "Bearer lfs_0123456789ab_secret", "lfs_ééééééééééé_secret",
])
def test_malformed_keys_have_no_prefix(raw_key: str) -> None:
    assert key_prefix(raw_key) is None


def test_keys_are_stored_as_sha256_hex() -> None:
    digest = key_hash("lfs_0123456789ab_secret")
    assert len(digest) == 64 and digest != key_hash("lfs_0123456789ab_secreT")


def test_scopes_are_normalised_and_checked() -> None:
    assert scopes_parse("write, read,read") == ["read", "write"]
    assert scopes_parse(["admin"]) == ["admin"]
    for bad in ("", "read,root", [], ["Read"]):
        with pytest.raises(ApiKeyError):
            scopes_parse(bad)
