"""Offline verifier: check LedgerFS receipts, balance proofs, consistency and log exports.

    python -m proofs.verify receipt RECEIPT.json --key KEY
    python -m proofs.verify balance BALANCE.json --key KEY
    python -m proofs.verify consistency OLD_CHECKPOINT NEW_CHECKPOINT PROOF.json --key KEY
    python -m proofs.verify log EXPORT.jsonl --checkpoints DIR_OR_FILE... --key KEY

KEY is the ledger's signed-note verifier key (`<origin>+<key id>+<base64 key>`, as served by
GET /api/v1/checkpoints/keys), or a file holding it. It is the only thing trusted: every
checkpoint is opened with it, and every proof is checked against a root taken from a verified
checkpoint, never against a root the proof merely claims. A checkpoint is a signed note, given
as a `.checkpoint` file (the note text, as the digest sinks store it) or as the API's JSON
checkpoint object with a `note` field.

Exit status: 0 only when everything verifies; 1 when something does not, with one line per
failure saying what; 2 for unusable input (missing file, not JSON, bad arguments).
The formats are described in docs/verification.md. Standard library and `cryptography` only:
no Django, no server.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from proofs.audit import Finding, LogAudit
from proofs.core.checkpoint import Checkpoint, note_hash, open_checkpoint
from proofs.core.errors import ProofError
from proofs.core.proof_json import verify_consistency_proof, verify_inclusion_proof
from proofs.core.rfc9162 import leaf_hash
from proofs.core.sumtree import verify_balance_proof
from proofs.ledger_state import StateLeafError, decode_leaf

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNUSABLE_INPUT = 2


class VerificationFailed(ProofError):
    """A check beyond the proof math failed (sizes, leaf bytes, account, checkpoint fields)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnusableInput(Exception):
    """Input that cannot even be read (missing file, not JSON, wrong shape)."""


# -- checkpoints ------------------------------------------------------------------------------

_CHECKPOINT_FIELDS = {
    "tree_size": lambda c: c.tree_size,
    "root_hash": lambda c: c.root_hash.hex(),
    "height": lambda c: c.height,
    "state_root": lambda c: c.state_root.hex(),
    "state_sum": lambda c: c.state_sum,
}


def note_of(checkpoint: object) -> str:
    """The signed note of a checkpoint given as note text or as a JSON object with `note`."""
    if isinstance(checkpoint, str):
        return checkpoint
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("note"), str):
        return checkpoint["note"]
    raise UnusableInput("a checkpoint must be a signed note or an object with a 'note' string")


def open_signed_checkpoint(checkpoint: object, verifier_key: str) -> tuple[str, Checkpoint]:
    """Verify a checkpoint's signature with `verifier_key`; returns (note, parsed checkpoint).

    When given as an object, its convenience fields (tree_size, root_hash, ...) must agree
    with the signed note: a server that says one thing and signs another is caught here.
    """
    note = note_of(checkpoint)
    parsed = open_checkpoint(note, verifier_key)
    if isinstance(checkpoint, Mapping):
        for name, signed in _CHECKPOINT_FIELDS.items():
            if name in checkpoint and checkpoint[name] != signed(parsed):
                raise VerificationFailed(
                    "checkpoint_fields_mismatch",
                    f"checkpoint field {name} is {checkpoint[name]!r} but the signed note "
                    f"says {signed(parsed)!r}",
                )
    return note, parsed


def _describe(checkpoint: Checkpoint) -> str:
    return (
        f"checkpoint {checkpoint.origin} height {checkpoint.height}, "
        f"tree size {checkpoint.tree_size}"
    )


# -- receipts and inclusion -------------------------------------------------------------------

def _decode_base64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationFailed("malformed_proof", f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as err:
        raise VerificationFailed("malformed_proof", f"{what} is not base64: {err}") from err


def verify_event_inclusion(
    proof: Mapping[str, object], leaf_data: object, checkpoint: Checkpoint
) -> dict:
    """Check that the event bytes `leaf_data` (base64) are leaf `leaf_index` of the tree the
    checkpoint signs; returns the event body."""
    if not isinstance(proof, Mapping):
        raise VerificationFailed("malformed_proof", "inclusion proof must be an object")
    if proof.get("tree_size") != checkpoint.tree_size:
        raise VerificationFailed(
            "tree_size_mismatch",
            f"proof is for tree size {proof.get('tree_size')!r} but the checkpoint signs "
            f"size {checkpoint.tree_size}",
        )
    verify_inclusion_proof(proof, checkpoint.root_hash)
    data = _decode_base64(leaf_data, "leaf_data")
    if leaf_hash(data).hex() != proof["leaf_hash"]:
        raise VerificationFailed(
            "leaf_mismatch", "the event bytes do not hash to the proven leaf hash"
        )
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise VerificationFailed("malformed_event", f"event bytes are not JSON: {err}") from err
    if not isinstance(body, dict) or body.get("seq") != proof["leaf_index"]:
        raise VerificationFailed(
            "event_mismatch",
            f"event carries seq {body.get('seq') if isinstance(body, dict) else None!r} but "
            f"is proven at leaf index {proof['leaf_index']}",
        )
    return body


def verify_receipt(receipt: object, verifier_key: str) -> str:
    """Verify a receipt bundle (GET /api/v1/receipts/{event_id}); returns a summary."""
    if not isinstance(receipt, Mapping):
        raise UnusableInput("a receipt must be a JSON object")
    _, checkpoint = open_signed_checkpoint(receipt.get("checkpoint"), verifier_key)
    inclusion = receipt.get("inclusion")
    body = verify_event_inclusion(inclusion, receipt.get("leaf_data"), checkpoint)  # type: ignore[arg-type]
    for name in ("event_id", "ledger", "seq"):
        field = {"event_id": "id"}.get(name, name)
        if name in receipt and receipt[name] != body.get(field):
            raise VerificationFailed(
                "event_mismatch",
                f"receipt names {name} {receipt[name]!r} but the event says {body.get(field)!r}",
            )
    return (
        f"event {body.get('id')} ({body.get('type')}, ledger {body.get('ledger')}, "
        f"seq {body.get('seq')}) is included in {_describe(checkpoint)}"
    )


def verify_inclusion_against(
    proof: object, checkpoint: object, verifier_key: str
) -> str:
    """An inclusion proof, optionally with `leaf_data`, against a signed checkpoint."""
    if not isinstance(proof, Mapping):
        raise UnusableInput("an inclusion proof must be a JSON object")
    _, parsed = open_signed_checkpoint(checkpoint, verifier_key)
    if "leaf_data" in proof:
        bare = {key: value for key, value in proof.items() if key != "leaf_data"}
        body = verify_event_inclusion(bare, proof["leaf_data"], parsed)
        return f"event {body.get('id')} (seq {body.get('seq')}) is included in {_describe(parsed)}"
    if proof.get("tree_size") != parsed.tree_size:
        raise VerificationFailed(
            "tree_size_mismatch",
            f"proof is for tree size {proof.get('tree_size')!r} but the checkpoint signs "
            f"size {parsed.tree_size}",
        )
    verify_inclusion_proof(proof, parsed.root_hash)
    return f"leaf {proof['leaf_index']} is included in {_describe(parsed)}"


# -- balance proofs ---------------------------------------------------------------------------

def verify_balance(bundle: object, verifier_key: str) -> str:
    """Verify a balance bundle (GET /api/v1/proofs/balance/{account}); returns a summary."""
    if not isinstance(bundle, Mapping):
        raise UnusableInput("a balance proof must be a JSON object")
    _, checkpoint = open_signed_checkpoint(bundle.get("checkpoint"), verifier_key)
    proof = bundle.get("proof")
    leaf_bytes, leaf_sum = verify_balance_proof(
        proof, checkpoint.state_root, checkpoint.state_sum
    )
    try:
        leaf = decode_leaf(leaf_bytes)
        liability = leaf.liability()
    except StateLeafError as err:
        raise VerificationFailed("malformed_leaf", f"account state: {err}") from err
    if leaf_sum != liability:
        raise VerificationFailed(
            "sum_mismatch",
            f"leaf sum {leaf_sum} is not the account's liability {liability} "
            "(available + held + bonded + fee)",
        )
    if "account" in bundle and bundle["account"] != leaf.id:
        raise VerificationFailed(
            "account_mismatch",
            f"proof is for account {leaf.id}, not {bundle['account']!r}",
        )
    if "height" in bundle and bundle["height"] != checkpoint.height:
        raise VerificationFailed(
            "checkpoint_fields_mismatch",
            f"bundle says height {bundle['height']!r} but the checkpoint is height "
            f"{checkpoint.height}",
        )
    balances = ", ".join(f"{name} {amount}" for name, amount in leaf.buckets.items())
    return (
        f"account {leaf.id} ({balances}; last seq {leaf.last_seq}) counts {leaf_sum} towards "
        f"liabilities of {checkpoint.state_sum} in {_describe(checkpoint)}"
    )


# -- consistency ------------------------------------------------------------------------------

def verify_consistency(
    first: object, second: object, proof: object, verifier_key: str
) -> str:
    """Verify that the log of checkpoint `second` extends the log of checkpoint `first`."""
    first_note, old = open_signed_checkpoint(first, verifier_key)
    _, new = open_signed_checkpoint(second, verifier_key)
    if not isinstance(proof, Mapping):
        raise UnusableInput("a consistency proof must be a JSON object")
    if (proof.get("first_size"), proof.get("second_size")) != (old.tree_size, new.tree_size):
        raise VerificationFailed(
            "tree_size_mismatch",
            f"proof is for sizes {proof.get('first_size')!r} -> {proof.get('second_size')!r} "
            f"but the checkpoints sign {old.tree_size} -> {new.tree_size}",
        )
    if old.origin != new.origin:
        raise VerificationFailed(
            "origin_mismatch", f"checkpoints of two logs: {old.origin} and {new.origin}"
        )
    if new.height < old.height:
        raise VerificationFailed(
            "height_order", f"second checkpoint (height {new.height}) precedes the first "
                            f"(height {old.height})"
        )
    verify_consistency_proof(proof, old.root_hash, new.root_hash)
    if new.height == old.height + 1 and new.prev_hash != note_hash(first_note):
        raise VerificationFailed(
            "prev_mismatch",
            f"checkpoint height {new.height} does not chain to the note of height {old.height}",
        )
    return (
        f"the log of {_describe(new)} extends the log of {_describe(old)} (append-only)"
    )


# -- log exports ------------------------------------------------------------------------------

def read_export_line(line: str, number: int) -> tuple[int, bytes, bytes]:
    """One line of a log export: {"seq": n, "body": base64, "hash": hex}."""
    try:
        record = json.loads(line)
        seq, body, chain_hash = record["seq"], record["body"], record["hash"]
        if type(seq) is not int or not isinstance(chain_hash, str) or len(chain_hash) != 64:
            raise ValueError("seq must be an integer and hash 64 hex digits")
        return seq, base64.b64decode(body, validate=True), bytes.fromhex(chain_hash)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise UnusableInput(f"export line {number} is not a log record: {err}") from err


def verify_log(
    lines: Iterable[str], checkpoints: Iterable[object], verifier_key: str
) -> tuple[list[Finding], str]:
    """Audit an export against checkpoints; returns (findings, summary)."""
    opened: list[tuple[str, Checkpoint]] = []
    findings: list[Finding] = []
    for index, checkpoint in enumerate(checkpoints):
        try:
            opened.append(open_signed_checkpoint(checkpoint, verifier_key))
        except ProofError as err:
            findings.append(Finding(f"checkpoint #{index + 1}", f"{err} [{err.code}]"))
    audit = LogAudit(opened)
    for number, line in enumerate(lines, start=1):
        if line.strip():
            audit.add(*read_export_line(line, number))
    findings += audit.finish()
    summary = (
        f"{audit.events} events checked (hashes and chain), {audit.checked_checkpoints} of "
        f"{len(opened)} checkpoints matched against recomputed event and state roots"
    )
    return findings, summary


# -- command line -----------------------------------------------------------------------------

def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UnusableInput(f"cannot read {path}: {err}") from err


def _read_json(path: str) -> object:
    try:
        return json.loads(_read_text(path))
    except ValueError as err:
        raise UnusableInput(f"{path} is not JSON: {err}") from err


def _read_checkpoint(path: str) -> object:
    """A `.checkpoint` note file, or a JSON checkpoint object (or a JSON list of them)."""
    text = _read_text(path)
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as err:
            raise UnusableInput(f"{path} is not JSON: {err}") from err
    return text


def _read_checkpoints(paths: list[str]) -> list[object]:
    checkpoints: list[object] = []
    for path in paths:
        if Path(path).is_dir():
            files = sorted(Path(path).glob("*.checkpoint"), key=lambda p: (len(p.stem), p.stem))
            checkpoints += [_read_text(str(file)) for file in files]
            continue
        value = _read_checkpoint(path)
        checkpoints += value if isinstance(value, list) else [value]
    if not checkpoints:
        raise UnusableInput("no checkpoints found in " + ", ".join(paths))
    return checkpoints


def _read_key(value: str) -> str:
    """The key itself, or the first line of a file holding it."""
    if "+" not in value and Path(value).is_file():
        return _read_text(value).strip()
    return value.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m proofs.verify",
        description="Verify LedgerFS proofs offline with only the ledger's public key.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    receipt = sub.add_parser("receipt", help="an event receipt (event bytes, proof, checkpoint)")
    receipt.add_argument("receipt", help="receipt JSON file")
    balance = sub.add_parser("balance", help="an account balance proof against a state root")
    balance.add_argument("proof", help="balance proof JSON file")
    consistency = sub.add_parser("consistency", help="two checkpoints are of one append-only log")
    consistency.add_argument("first", help="older checkpoint (.checkpoint note or JSON)")
    consistency.add_argument("second", help="newer checkpoint (.checkpoint note or JSON)")
    consistency.add_argument("proof", help="consistency proof JSON file")
    log = sub.add_parser("log", help="a full log export against checkpoints")
    log.add_argument("export", help="log export, JSON lines {seq, body, hash} ('-' = stdin)")
    log.add_argument(
        "--checkpoints", nargs="+", required=True, metavar="PATH",
        help="checkpoint files, JSON files, or directories of .checkpoint files",
    )
    for command in (receipt, balance, consistency, log):
        command.add_argument(
            "--key", required=True, help="verifier key string, or a file holding it"
        )
    return parser


def run(args: argparse.Namespace) -> tuple[list[str], str]:
    """(failures, summary) of one command; raises UnusableInput."""
    key = _read_key(args.key)
    if args.command == "log":
        checkpoints = _read_checkpoints(args.checkpoints)
        if args.export == "-":
            findings, summary = verify_log(sys.stdin, checkpoints, key)
        else:
            try:
                with open(args.export, encoding="utf-8") as lines:
                    findings, summary = verify_log(lines, checkpoints, key)
            except OSError as err:
                raise UnusableInput(f"cannot read {args.export}: {err}") from err
        return [str(finding) for finding in findings], summary
    try:
        if args.command == "receipt":
            summary = verify_receipt(_read_json(args.receipt), key)
        elif args.command == "balance":
            summary = verify_balance(_read_json(args.proof), key)
        else:
            summary = verify_consistency(
                _read_checkpoint(args.first), _read_checkpoint(args.second),
                _read_json(args.proof), key,
            )
    except ProofError as err:
        return [f"{err} [{err.code}]"], ""
    return [], summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        failures, summary = run(args)
    except UnusableInput as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return EXIT_UNUSABLE_INPUT
    if failures:
        for failure in failures:
            print(f"INVALID: {failure}")
        if summary:
            print(f"({summary})")
        return EXIT_INVALID
    print(f"VALID: {summary}")
    return EXIT_VALID


if __name__ == "__main__":
    sys.exit(main())
