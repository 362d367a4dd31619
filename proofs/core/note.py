"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, as golang.org/x/mod/sumdb/note.

A signed note is the text (ending in a newline), a blank line, then signature lines
"— <key name> <base64(key id as 4 bytes big-endian || 64-byte signature)>" (U+2014, space).
The signature covers the text including its final newline. Key strings are Go's:
- verifier: "<name>+<8 hex digits key id>+<base64(0x01 || 32-byte public key)>"
- signer:   "PRIVATE+KEY+<name>+<8 hex digits key id>+<base64(0x01 || 32-byte seed)>"
key id = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), read big-endian.

Invariant: a note from `sign_note` opens with Go's `note.Open`, and `verify_note` accepts a
note only if it has Go's syntax and a valid signature by exactly the given key (name and id).
"""

import hashlib
import unicodedata

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from proofs.core.encoding import decode_base64, encode_base64
from proofs.core.errors import (
    BadSignature,
    KeyIdMismatch,
    MalformedKey,
    MalformedNote,
    UnknownKeyName,
)

ALGORITHM_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_SIGNATURES = 100  # Go's note.Open limit
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64


def is_valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode white space, no "+" (the key-string separator)."""
    # str.isspace covers every character Go's unicode.IsSpace does, and the C0 separators.
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in name)
    )


def key_id(name: str, public_key: bytes) -> int:
    """C2SP key id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || key)[:4], big-endian."""
    preimage = name.encode("utf-8") + b"\n" + bytes([ALGORITHM_ED25519]) + public_key
    return int.from_bytes(hashlib.sha256(preimage).digest()[:4], "big")


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key string Go's note.NewVerifier accepts, for a raw Ed25519 public key."""
    if not is_valid_key_name(name):
        raise MalformedKey(f"invalid key name {name!r}")
    if len(public_key) != ED25519_KEY_SIZE:
        raise MalformedKey(f"Ed25519 public key must be {ED25519_KEY_SIZE} bytes")
    encoded = encode_base64(bytes([ALGORITHM_ED25519]) + public_key)
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


def generate_signer(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key pair as (signer key string, verifier key string)."""
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    seed = private_key.private_bytes_raw()
    verifier = verifier_key(name, public_key)  # validates the name
    encoded_seed = encode_base64(bytes([ALGORITHM_ED25519]) + seed)
    return f"PRIVATE+KEY+{name}+{key_id(name, public_key):08x}+{encoded_seed}", verifier


def _parse_key(name: str, id_hex: str, key_b64: str, kind: str) -> tuple[int, bytes]:
    """Common checks of both key strings; returns (claimed key id, raw 32-byte key)."""
    if not is_valid_key_name(name):
        raise MalformedKey(f"{kind} key has an invalid name {name!r}")
    if len(id_hex) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in id_hex):
        raise MalformedKey(f"{kind} key id must be 8 hex digits")
    try:
        key = decode_base64(key_b64)
    except ValueError as err:
        raise MalformedKey(f"{kind} key material: {err}") from err
    if len(key) != 1 + ED25519_KEY_SIZE or key[0] != ALGORITHM_ED25519:
        raise MalformedKey(f"{kind} key is not 0x01 followed by a 32-byte Ed25519 key")
    return int(id_hex, 16), key[1:]


def _parse_verifier(verifier_key_str: str) -> tuple[str, int, Ed25519PublicKey]:
    parts = verifier_key_str.split("+", 2)  # base64 may itself contain "+"
    if len(parts) != 3:
        raise MalformedKey("verifier key must be <name>+<key id>+<key>")
    name = parts[0]
    claimed_id, public_key = _parse_key(*parts, kind="verifier")
    if key_id(name, public_key) != claimed_id:
        raise MalformedKey("verifier key id does not match its public key")
    return name, claimed_id, Ed25519PublicKey.from_public_bytes(public_key)


def _parse_signer(signer_key_str: str) -> tuple[str, int, Ed25519PrivateKey]:
    parts = signer_key_str.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise MalformedKey("signer key must be PRIVATE+KEY+<name>+<key id>+<key>")
    name = parts[2]
    claimed_id, seed = _parse_key(*parts[2:], kind="signer")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if key_id(name, public_key) != claimed_id:
        raise MalformedKey("signer key id does not match its key")
    return name, claimed_id, private_key


def _check_characters(message: str) -> None:
    """Valid UTF-8 without ASCII control characters other than newline (as Go's Open)."""
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as err:  # lone surrogates
        raise MalformedNote("note is not valid UTF-8") from err
    if any(ch < " " and ch != "\n" for ch in message):
        raise MalformedNote("note contains an ASCII control character")


def _signature_valid(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def sign_note(text: str, signer_key_str: str) -> str:
    """Sign `text` and return the full note: text, blank line, one signature line."""
    name, claimed_id, private_key = _parse_signer(signer_key_str)
    if not text.endswith("\n"):
        raise MalformedNote("note text must end with a newline")
    # Go allows blank lines in the text; refusing them keeps the text/signature split
    # unambiguous for every parser, including ones that split at the first blank line.
    if text.startswith("\n") or "\n\n" in text:
        raise MalformedNote("note text must not contain blank lines")
    _check_characters(text)
    signature = private_key.sign(text.encode("utf-8"))
    blob = encode_base64(claimed_id.to_bytes(4, "big") + signature)
    return f"{text}\n{SIGNATURE_PREFIX}{name} {blob}\n"


def verify_note(note: str, verifier_key_str: str) -> str:
    """Return the text of `note` if the verifier's key signed it; raises `ProofError`.

    Follows Go's note.Open: other keys' signatures are ignored, the first signature by this
    key (name and id) decides, and a bad one rejects the note outright.
    """
    name, expected_id, public_key = _parse_verifier(verifier_key_str)
    if not isinstance(note, str):
        raise MalformedNote("note must be a string")
    _check_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("note has no blank line before its signatures")
    text, signature_block = note[: split + 1], note[split + 2 :]
    if not signature_block.endswith("\n"):
        raise MalformedNote("note must end with a newline-terminated signature line")

    lines = signature_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"note has more than {MAX_SIGNATURES} signatures")
    verified = name_seen = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNote(f"signature line does not start with an em dash: {line!r}")
        signer_name, _, blob_b64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            blob = decode_base64(blob_b64)
        except ValueError as err:
            raise MalformedNote(f"signature is not base64: {err}") from err
        if not is_valid_key_name(signer_name) or len(blob) < 5:
            raise MalformedNote(f"malformed signature line: {line!r}")
        if signer_name != name:
            continue
        name_seen = True
        if int.from_bytes(blob[:4], "big") != expected_id or verified:
            continue
        if not _signature_valid(public_key, blob[4:], text.encode("utf-8")):
            raise BadSignature(f"invalid signature for key {name}+{expected_id:08x}")
        verified = True
    if verified:
        return text
    if name_seen:
        raise KeyIdMismatch(f"note is signed by {name} but not with key id {expected_id:08x}")
    raise UnknownKeyName(f"note carries no signature by {name}")
