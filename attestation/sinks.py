"""External digest sinks: write-once homes for signed checkpoints outside the ledger's reach.

A sink stores the signed note of each checkpoint as `<ledger>/<height>.checkpoint` and never
replaces it: `put` on a name that exists raises `DigestAlreadyWritten`, whatever the content.
Later verification (`verify_digests`) compares the live log with what the sinks hold, so an
operator who rewrites history must also rewrite every sink, which these refuse to allow:
- `DirectorySink`: files created with O_CREAT|O_EXCL, fsynced, then made read-only (0444).
  Point it at storage the ledger's operators cannot rewrite (a WORM mount, another host).
- `S3ObjectLockSink`: objects put with `If-None-Match: *` into a bucket with Object Lock,
  each locked in COMPLIANCE mode until its retain-until date (nobody, root included, can
  delete or shorten it). A new version under the same key could still be added by someone
  with write access, so `versions` returns all of them and verification flags any extra.

Sinks are configured by `LEDGERFS_DIGEST_SINKS` (see config/settings.py) and built by
`configured_sinks()`.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
import stat
from abc import ABC, abstractmethod
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from attestation.sealer import AttestationError

_FILE_NAME = re.compile(r"([1-9][0-9]*)\.checkpoint")
READ_ONLY_MODE = 0o444


class DigestSinkError(AttestationError):
    """A sink could not be written or read now (I/O, network): retried later."""

    code = "digest_sink_unavailable"


class DigestAlreadyWritten(DigestSinkError):
    """The sink already holds a digest under this name; it is never replaced."""

    code = "digest_already_written"


class DigestConflict(AttestationError):
    """The sink holds a different checkpoint at this height than the ledger sealed."""

    code = "digest_conflict"


def digest_name(ledger: str, height: int) -> str:
    return f"{ledger}/{height}.checkpoint"


class DigestSink(ABC):
    name: str

    @abstractmethod
    def put(self, ledger: str, height: int, note: str) -> None:
        """Store the checkpoint of `height` once; raises DigestAlreadyWritten if present."""

    @abstractmethod
    def versions(self, ledger: str, height: int) -> list[str]:
        """Every stored version of that checkpoint, oldest first; [] when absent."""

    @abstractmethod
    def heights(self, ledger: str) -> list[int]:
        """Heights the sink holds a checkpoint for, ascending."""


class DirectorySink(DigestSink):
    """Write-once files under `path` (default `<LEDGERFS_DATA_DIR>/digests`)."""

    def __init__(self, name: str = "directory", path: str | Path | None = None) -> None:
        self.name = name
        self._path = Path(path) if path else None

    @property
    def root(self) -> Path:
        return self._path or Path(settings.LEDGERFS_DATA_DIR) / "digests"

    def _file(self, ledger: str, height: int) -> Path:
        return self.root / digest_name(ledger, height)

    def put(self, ledger: str, height: int, note: str) -> None:
        path = self._file(ledger, height)
        data = note.encode()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                if not self._finish_interrupted(path, data):
                    raise DigestAlreadyWritten(f"{path} exists and is never rewritten") from None
                return
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
                os.fchmod(file.fileno(), READ_ONLY_MODE)
            _fsync_directory(path.parent)
        except OSError as err:
            raise DigestSinkError(f"cannot write {path}: {err}") from err

    @staticmethod
    def _finish_interrupted(path: Path, data: bytes) -> bool:
        """Complete our own write cut short by a crash: the file is still writable (it is
        made read-only only once complete) and holds a prefix of the same note."""
        if stat.S_IMODE(path.stat().st_mode) & stat.S_IWUSR == 0:
            return False
        written = path.read_bytes()
        if len(written) >= len(data) or not data.startswith(written):
            return False
        with path.open("ab") as file:
            file.write(data[len(written):])
            file.flush()
            os.fsync(file.fileno())
            os.fchmod(file.fileno(), READ_ONLY_MODE)
        return True

    def versions(self, ledger: str, height: int) -> list[str]:
        path = self._file(ledger, height)
        try:
            return [path.read_text(encoding="utf-8")]
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as err:
            raise DigestSinkError(f"cannot read {path}: {err}") from err

    def heights(self, ledger: str) -> list[int]:
        directory = self.root / ledger
        if not directory.is_dir():
            return []
        matches = (_FILE_NAME.fullmatch(p.name) for p in directory.iterdir())
        return sorted(int(m.group(1)) for m in matches if m)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3ObjectLockSink(DigestSink):
    """Objects `<prefix><ledger>/<height>.checkpoint` locked in COMPLIANCE mode."""

    def __init__(
        self, name: str = "s3", *, bucket: str, prefix: str = "ledgerfs/",
        retention_days: int = 2555, endpoint_url: str | None = None,
        region_name: str | None = None, client: object | None = None,
    ) -> None:
        self.name = name
        self.bucket = bucket
        self.prefix = prefix
        self.retention_days = retention_days
        self._client = client
        self._client_options = {"endpoint_url": endpoint_url, "region_name": region_name}
        self._lock_checked = False

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            # botocore's standard retry mode retries throttling and 5xx with backoff itself.
            self._client = boto3.client(
                "s3", config=Config(retries={"max_attempts": 5, "mode": "standard"}),
                **{k: v for k, v in self._client_options.items() if v},
            )
        return self._client

    def _key(self, ledger: str, height: int) -> str:
        return self.prefix + digest_name(ledger, height)

    def _errors(self):
        from botocore.exceptions import BotoCoreError, ClientError

        return BotoCoreError, ClientError

    def _check_object_lock(self) -> None:
        """Fail closed: never deliver to a bucket that could let a digest be deleted."""
        if self._lock_checked:
            return
        BotoCoreError, ClientError = self._errors()
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as err:
            raise DigestSinkError(
                f"s3://{self.bucket}: cannot read its Object Lock configuration: {err}"
            ) from err
        if config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise DigestSinkError(f"s3://{self.bucket} does not have Object Lock enabled")
        self._lock_checked = True

    def put(self, ledger: str, height: int, note: str) -> None:
        self._check_object_lock()
        BotoCoreError, ClientError = self._errors()
        key = self._key(ledger, height)
        retain_until = dt.datetime.now(dt.UTC) + dt.timedelta(days=self.retention_days)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=note.encode(),
                ContentType="text/plain; charset=utf-8",
                ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=retain_until,
                IfNoneMatch="*", ChecksumAlgorithm="SHA256",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise DigestAlreadyWritten(
                    f"s3://{self.bucket}/{key} exists and is never rewritten"
                ) from err
            raise DigestSinkError(f"s3://{self.bucket}/{key}: {err}") from err
        except BotoCoreError as err:
            raise DigestSinkError(f"s3://{self.bucket}/{key}: {err}") from err

    def versions(self, ledger: str, height: int) -> list[str]:
        BotoCoreError, ClientError = self._errors()
        key = self._key(ledger, height)
        try:
            listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
            # S3 lists a key's versions newest first; times tie within a second.
            found = [v for v in reversed(listing.get("Versions", [])) if v["Key"] == key]
            found.sort(key=lambda v: v["LastModified"])
            return [
                self.client.get_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])[
                    "Body"
                ].read().decode()
                for v in found
            ]
        except (BotoCoreError, ClientError, UnicodeDecodeError) as err:
            raise DigestSinkError(f"s3://{self.bucket}/{key}: {err}") from err

    def heights(self, ledger: str) -> list[int]:
        BotoCoreError, ClientError = self._errors()
        prefix = f"{self.prefix}{ledger}/"
        heights = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    match = _FILE_NAME.fullmatch(item["Key"][len(prefix):])
                    if match:
                        heights.append(int(match.group(1)))
        except (BotoCoreError, ClientError) as err:
            raise DigestSinkError(f"s3://{self.bucket}/{prefix}: {err}") from err
        return sorted(heights)


_sinks_cache: tuple[object, list[DigestSink]] | None = None


def configured_sinks() -> list[DigestSink]:
    """The sinks of `LEDGERFS_DIGEST_SINKS`: [{"backend": dotted path, "name": ..., **options}]."""
    global _sinks_cache
    config = settings.LEDGERFS_DIGEST_SINKS
    if _sinks_cache is None or _sinks_cache[0] != config:
        sinks = []
        for entry in config:
            options = dict(entry)
            backend = import_string(options.pop("backend"))
            sinks.append(backend(**options))
        _sinks_cache = (copy.deepcopy(config), sinks)
    return _sinks_cache[1]
