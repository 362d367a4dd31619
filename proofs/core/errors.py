"""Exceptions of the proofs package: one root (`ProofError`), one class per failure.

Every class carries a stable machine-readable `code` so callers (API, offline verifier) branch
on the code, never on the message. Classes are listed roughly in the order checks run:
arguments, shape, then cryptographic comparison.
"""


class ProofError(Exception):
    """Root of every error raised by `proofs`."""

    code = "proof_error"


class PreconditionFailed(ProofError):
    """An argument is outside the documented domain (e.g. index >= size, first > second)."""

    code = "precondition_failed"


class MissingNode(ProofError):
    """A node store lacks a node that a tree of the claimed size must contain."""

    code = "missing_node"


class MalformedProof(ProofError):
    """A proof has the wrong shape: path length, hash length, field type or encoding."""

    code = "malformed_proof"


class SumOutOfRange(ProofError):
    """A Merkle-sum value is negative or does not fit the 16-byte signed-safe range."""

    code = "sum_out_of_range"


class RootMismatch(ProofError):
    """The root recomputed from a proof differs from the trusted root."""

    code = "root_mismatch"

    def __init__(self, expected: bytes, computed: bytes) -> None:
        self.expected = expected.hex()
        self.computed = computed.hex()
        super().__init__(f"root mismatch: expected {self.expected}, computed {self.computed}")


class SumMismatch(ProofError):
    """The sum recomputed from a balance proof differs from the trusted sum."""

    code = "sum_mismatch"

    def __init__(self, expected: int, computed: int) -> None:
        self.expected = expected
        self.computed = computed
        super().__init__(f"sum mismatch: expected {expected}, computed {computed}")


class MalformedKey(ProofError):
    """A signed-note signer or verifier key string does not parse or is inconsistent."""

    code = "malformed_key"


class MalformedNote(ProofError):
    """A signed note (or a text to be signed) breaks the C2SP signed-note syntax."""

    code = "malformed_note"


class BadSignature(ProofError):
    """A signature line names the verifier's key (name and id) but does not verify."""

    code = "bad_signature"


class NoSignatureByKey(ProofError):
    """The note is well formed but carries no signature by the verifier's key."""

    code = "no_signature_by_key"


class UnknownKeyName(NoSignatureByKey):
    """No signature line carries the verifier's key name: signed by someone else."""

    code = "unknown_key_name"


class KeyIdMismatch(NoSignatureByKey):
    """Signature lines carry the verifier's name but another key id (e.g. a rotated key)."""

    code = "key_id_mismatch"


class MalformedCheckpoint(ProofError):
    """A checkpoint body breaks the tlog-checkpoint syntax or our extension lines."""

    code = "malformed_checkpoint"
