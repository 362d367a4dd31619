"""Digest sinks: the write-once directory and S3 with Object Lock (moto's S3)."""

from __future__ import annotations

import datetime as dt
import stat

import boto3
import pytest
from moto import mock_aws

from attestation.sinks import (
    DigestAlreadyWritten,
    DigestSinkError,
    DirectorySink,
    S3ObjectLockSink,
    configured_sinks,
)

NOTE = "ledgerfs.test/EUR\n9\nAAAA\n\n— ledgerfs.test/EUR AAAA\n"
BUCKET = "ledgerfs-digests"


def test_the_directory_sink_writes_once_read_only_and_never_again(tmp_path):
    sink = DirectorySink(path=tmp_path)
    sink.put("EUR", 1, NOTE)
    sink.put("EUR", 10, NOTE)
    path = tmp_path / "EUR" / "1.checkpoint"
    assert path.read_text() == NOTE
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    for note in (NOTE, "rewritten\n"):
        with pytest.raises(DigestAlreadyWritten, match="never rewritten"):
            sink.put("EUR", 1, note)
    assert sink.versions("EUR", 1) == [NOTE]
    assert sink.versions("EUR", 2) == []
    (tmp_path / "EUR" / "notes.txt").write_text("ignored")
    assert sink.heights("EUR") == [1, 10]
    assert sink.heights("USD") == []


def test_an_unwritable_directory_is_a_retryable_sink_error(tmp_path):
    (tmp_path / "EUR").write_text("a file where the directory should be")
    with pytest.raises(DigestSinkError) as caught:
        DirectorySink(path=tmp_path).put("EUR", 1, NOTE)
    assert not isinstance(caught.value, DigestAlreadyWritten)


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, ObjectLockEnabledForBucket=True,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        yield client


def test_s3_digests_are_locked_in_compliance_mode_and_never_overwritten(s3):
    sink = S3ObjectLockSink(bucket=BUCKET, prefix="digests/", retention_days=30, client=s3)
    sink.put("EUR", 1, NOTE)

    head = s3.head_object(Bucket=BUCKET, Key="digests/EUR/1.checkpoint")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    retain_until = head["ObjectLockRetainUntilDate"]
    assert retain_until > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)
    with pytest.raises(DigestAlreadyWritten):
        sink.put("EUR", 1, "rewritten\n")
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="digests/EUR/1.checkpoint")
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key="digests/EUR/1.checkpoint",
                         VersionId=versions["Versions"][0]["VersionId"])
    assert sink.versions("EUR", 1) == [NOTE]
    assert sink.versions("EUR", 2) == []
    assert sink.heights("EUR") == [1]


def test_a_second_version_added_behind_the_sinks_back_is_visible(s3):
    sink = S3ObjectLockSink(bucket=BUCKET, client=s3)
    sink.put("EUR", 1, NOTE)
    s3.put_object(Bucket=BUCKET, Key="ledgerfs/EUR/1.checkpoint", Body=b"forged\n")
    assert sink.versions("EUR", 1) == [NOTE, "forged\n"]


def test_s3_refuses_a_bucket_without_object_lock(s3):
    s3.create_bucket(Bucket="plain-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    sink = S3ObjectLockSink(bucket="plain-bucket", client=s3)
    with pytest.raises(DigestSinkError, match="Object Lock"):
        sink.put("EUR", 1, NOTE)


def test_s3_outages_are_retryable_sink_errors(s3):
    sink = S3ObjectLockSink(bucket="no-such-bucket", client=s3)
    with pytest.raises(DigestSinkError):
        sink.put("EUR", 1, NOTE)
    with pytest.raises(DigestSinkError):
        sink.heights("EUR")


def test_sinks_come_from_settings(settings, tmp_path):
    settings.LEDGERFS_DIGEST_SINKS = [
        {"backend": "attestation.sinks.DirectorySink", "name": "worm", "path": str(tmp_path)},
        {"backend": "attestation.sinks.S3ObjectLockSink", "name": "s3", "bucket": BUCKET,
         "retention_days": 7},
    ]
    directory, s3_sink = configured_sinks()
    assert (directory.name, directory.root) == ("worm", tmp_path)
    assert (s3_sink.name, s3_sink.bucket, s3_sink.retention_days) == ("s3", BUCKET, 7)
    assert configured_sinks()[0] is directory
