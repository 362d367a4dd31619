"""Signed checkpoints: a C2SP tlog-checkpoint body with LedgerFS extension lines (DESIGN 5).

Body, one item per line, each line ending in a newline:
    <origin>                 log identity; a valid key name (no spaces, no "+"), and by
                             convention the name of the key that signs it
    <tree size>              event-tree size, decimal without leading zeros
    <root hash>              event-tree root, standard padded base64 of 32 bytes
    height <n>               block height of the block this checkpoint seals
    state-root <base64>      Merkle-sum state tree root hash (32 bytes)
    state-sum <n>            state tree root sum = outstanding liabilities, minor units
    prev <base64>            SHA-256 of the previous checkpoint's full signed note (UTF-8),
                             32 zero bytes ("AAAA...AAA=", 44 characters) for the first
    time <n>                 seal time as integer nanoseconds since the Unix epoch (UTC);
                             an integer keeps it exact and has one spelling, unlike RFC 3339
All integers are canonical decimals; all five extension lines are required, in this order.

Invariant: `Checkpoint.parse(text).body() == text` for every accepted text, and every
`Checkpoint` value can be formatted and parsed back; anything else is MalformedCheckpoint.
"""

import hashlib
from dataclasses import dataclass

from proofs.core.encoding import HASH_SIZE, decode_base64, decode_decimal, encode_base64
from proofs.core.errors import MalformedCheckpoint, ProofError
from proofs.core.note import is_valid_key_name, sign_note, verify_note
from proofs.core.sumtree import check_sum

GENESIS_PREV_HASH = bytes(HASH_SIZE)
EXTENSION_KEYS = ("height", "state-root", "state-sum", "prev", "time")


def note_hash(note: str) -> bytes:
    """The `prev` value a successor of the checkpoint signed as `note` must carry."""
    return hashlib.sha256(note.encode("utf-8")).digest()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    height: int
    state_root: bytes
    state_sum: int
    prev_hash: bytes
    time_ns: int

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.origin):
            raise MalformedCheckpoint(f"origin {self.origin!r} is not a valid key name")
        for field in ("tree_size", "height", "time_ns"):
            value = getattr(self, field)
            if type(value) is not int or value < 0:
                raise MalformedCheckpoint(f"{field} must be a non-negative integer")
        for field in ("root_hash", "state_root", "prev_hash"):
            value = getattr(self, field)
            if not isinstance(value, bytes) or len(value) != HASH_SIZE:
                raise MalformedCheckpoint(f"{field} must be {HASH_SIZE} bytes")
        try:
            check_sum(self.state_sum)
        except ProofError as err:
            raise MalformedCheckpoint(f"state_sum: {err}") from err

    def body(self) -> str:
        """The note text to sign."""
        return (
            f"{self.origin}\n"
            f"{self.tree_size}\n"
            f"{encode_base64(self.root_hash)}\n"
            f"height {self.height}\n"
            f"state-root {encode_base64(self.state_root)}\n"
            f"state-sum {self.state_sum}\n"
            f"prev {encode_base64(self.prev_hash)}\n"
            f"time {self.time_ns}\n"
        )

    @classmethod
    def parse(cls, text: str) -> "Checkpoint":
        """Strictly parse a checkpoint body (the text of a verified note)."""
        if not isinstance(text, str) or not text.endswith("\n"):
            raise MalformedCheckpoint("checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 3 + len(EXTENSION_KEYS):
            raise MalformedCheckpoint(
                f"checkpoint body must have {3 + len(EXTENSION_KEYS)} lines, got {len(lines)}"
            )
        origin, size_line, root_line = lines[:3]
        values: list[str] = []
        for key, line in zip(EXTENSION_KEYS, lines[3:], strict=True):
            prefix = key + " "
            if not line.startswith(prefix):
                raise MalformedCheckpoint(f"expected a {key!r} line, got {line!r}")
            values.append(line[len(prefix) :])
        height, state_root, state_sum, prev, time_ns = values
        try:
            checkpoint = cls(
                origin=origin,
                tree_size=decode_decimal(size_line),
                root_hash=decode_base64(root_line),
                height=decode_decimal(height),
                state_root=decode_base64(state_root),
                state_sum=decode_decimal(state_sum),
                prev_hash=decode_base64(prev),
                time_ns=decode_decimal(time_ns),
            )
        except ValueError as err:
            raise MalformedCheckpoint(str(err)) from err
        # Guards the module invariant: one accepted spelling per checkpoint.
        if checkpoint.body() != text:
            raise MalformedCheckpoint("checkpoint body is not in canonical form")
        return checkpoint


def sign_checkpoint(checkpoint: Checkpoint, signer_key: str) -> str:
    """The checkpoint as a signed note (C2SP signed-note, Ed25519)."""
    return sign_note(checkpoint.body(), signer_key)


def open_checkpoint(note: str, verifier_key: str) -> Checkpoint:
    """Verify the note's signature by `verifier_key`, then parse its text."""
    return Checkpoint.parse(verify_note(note, verifier_key))
