"""Checkpoint signing keys: one Ed25519 key per shard, named after the checkpoint origin.

The origin (and key name) of ledger CODE is `<LEDGERFS_CHECKPOINT_ORIGIN_PREFIX>/<CODE>`, e.g.
`ledgerfs.local/EUR`. A key comes from the `LEDGERFS_SIGNING_KEYS` setting (signer key
strings, `PRIVATE+KEY+<name>+<id>+<key>`, matched to ledgers by name) or else from
`<LEDGERFS_DATA_DIR>/keys/<CODE>.key`, which is generated on first use: created with O_EXCL and
mode 0600 in a 0700 directory (two processes racing to create it agree on one key), and is
refused if its permissions let anyone but the owner read it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

from attestation.sealer import AttestationError, SigningKey
from proofs.core.encoding import decode_base64
from proofs.core.errors import ProofError
from proofs.core.note import generate_signer, verifier_key

KEY_FILE_MODE = 0o600
KEY_DIR_MODE = 0o700


class SigningKeyError(AttestationError):
    code = "signing_key_invalid"


def origin_for(ledger: str) -> str:
    return f"{settings.LEDGERFS_CHECKPOINT_ORIGIN_PREFIX}/{ledger}"


def keys_dir() -> Path:
    return Path(settings.LEDGERFS_DATA_DIR) / "keys"


def _signing_key(signer: str, source: str) -> SigningKey:
    """Parse a signer key string into a `SigningKey` (verifier derived from it)."""
    parts = signer.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise SigningKeyError(f"{source}: not a signed-note signer key")
    name = parts[2]
    try:
        seed = decode_base64(parts[4])[1:]
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        verifier = verifier_key(name, public)
    except (ValueError, ProofError) as err:
        raise SigningKeyError(f"{source}: {err}") from err
    if verifier.split("+")[1] != parts[3].lower():
        raise SigningKeyError(f"{source}: key id does not match the key")
    return SigningKey(origin=name, signer=signer.strip(), verifier=verifier)


def _configured(origin: str) -> SigningKey | None:
    for index, signer in enumerate(settings.LEDGERFS_SIGNING_KEYS):
        key = _signing_key(signer, f"LEDGERFS_SIGNING_KEYS[{index}]")
        if key.origin == origin:
            return key
    return None


def signing_key_get(*, ledger: str, create: bool = True) -> SigningKey | None:
    """The shard's signing key: configured, or from its key file, generated if `create`."""
    origin = origin_for(ledger)
    key = _configured(origin)
    if key is not None:
        return key
    path = keys_dir() / f"{ledger}.key"
    if not path.exists():
        if not create:
            return None
        _create_key_file(path, origin)
    return _load_key_file(path, origin)


def _create_key_file(path: Path, origin: str) -> None:
    """Write a new key where no reader can see it half-written, then link it into place:
    link() fails if the name exists, so a process that loses the race uses the winner's."""
    path.parent.mkdir(mode=KEY_DIR_MODE, parents=True, exist_ok=True)
    signer, _ = generate_signer(origin)
    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(signer + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()


def _load_key_file(path: Path, origin: str) -> SigningKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SigningKeyError(
            f"{path} is readable by others (mode {mode:o}); run chmod 600 on it"
        )
    key = _signing_key(path.read_text(), str(path))
    if key.origin != origin:
        raise SigningKeyError(
            f"{path} holds the key of {key.origin!r}, but this ledger signs as {origin!r} "
            "(was LEDGERFS_CHECKPOINT_ORIGIN_PREFIX changed?)"
        )
    return key
