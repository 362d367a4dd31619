"""The log audit of the offline verifier: a log against checkpoints, every finding reported.

Checkpoints are signed here from roots recomputed independently of the sealer (leaf hashes
folded by `root_from_leaf_hashes`, account states replayed into a `SumTree`), over a log the
ledger's own state machine wrote (memory event store), so no RocksDB and no Django.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.eventstore.memory import MemoryEventStore
from proofs.audit import LogAudit, RootAccumulator
from proofs.core.checkpoint import GENESIS_PREV_HASH, Checkpoint, note_hash, sign_checkpoint
from proofs.core.note import generate_signer
from proofs.core.rfc9162 import leaf_hash, root_from_leaf_hashes
from proofs.core.sumtree import SumTree
from proofs.ledger_state import LedgerStates
from proofs.verify import verify_log
from tests.unit.eventstore_contract import LEDGER, Driver, Workload

ORIGIN = "ledgerfs.test/EUR"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def events() -> list:
    store = MemoryEventStore(LEDGER)
    workload = Workload(Driver(store), seed=5)
    for _ in range(60):
        workload.group()
    return list(store.read())


@pytest.fixture(scope="module")
def key() -> tuple[str, str]:
    return generate_signer(ORIGIN)


def sign_checkpoints(events, sizes, signer) -> list[tuple[str, Checkpoint]]:
    """Checkpoints at `sizes`, chained, with roots recomputed from scratch."""
    signed, prev = [], GENESIS_PREV_HASH
    for height, size in enumerate(sizes, start=1):
        states = LedgerStates()
        for event in events[:size]:
            states.apply(json.loads(event.body))
        state_root, state_sum = SumTree(
            states.leaf(position) for position in range(len(states.leaves))
        ).root()
        checkpoint = Checkpoint(
            ORIGIN, size, root_from_leaf_hashes([leaf_hash(e.body) for e in events[:size]]),
            height, state_root, state_sum, prev, 1_700_000_000_000_000_000 + height,
        )
        note = sign_checkpoint(checkpoint, signer)
        signed.append((note, checkpoint))
        prev = note_hash(note)
    return signed


def audit(events, checkpoints) -> list[str]:
    log = LogAudit(checkpoints)
    for event in events:
        log.add(event.seq, event.body, event.hash)
    return [str(finding) for finding in log.finish()]


def test_the_root_accumulator_is_the_rfc9162_root_at_every_size():
    leaves = [leaf_hash(b"%d" % i) for i in range(70)]
    accumulator = RootAccumulator()
    assert accumulator.root() == root_from_leaf_hashes([])
    for size in range(1, 71):
        accumulator.append(leaves[size - 1])
        assert accumulator.root() == root_from_leaf_hashes(leaves[:size])


def test_an_untouched_log_matches_every_checkpoint(events, key):
    sizes = [2, 17, len(events) // 2, len(events)]
    checkpoints = sign_checkpoints(events, sizes, key[0])
    log = LogAudit(checkpoints)
    for event in events:
        log.add(event.seq, event.body, event.hash)
    assert log.finish() == []
    assert (log.events, log.checked_checkpoints) == (len(events), 4)


def test_one_altered_event_is_one_chain_finding_plus_the_roots_it_changes(events, key):
    checkpoints = sign_checkpoints(events, [10, 20, len(events)], key[0])
    altered = list(events)
    victim = altered[15]
    altered[15] = type(victim)(victim.seq, victim.body.replace(b'"ts":', b'"ts": '), victim.hash)

    findings = audit(altered, checkpoints)
    assert findings[0].startswith("seq 15: body hashes to")
    assert "event altered" in findings[0]
    assert findings[1] == "seq 15: body is not in canonical JSON form"
    assert any("checkpoint height 2 (tree size 20): signed root" in f for f in findings)
    assert any("checkpoint height 3" in f for f in findings)
    assert not any("checkpoint height 1 " in f for f in findings)


def test_a_rechained_rewrite_is_caught_only_by_the_signed_roots(events, key):
    """An attacker who rewrites an amount and recomputes every later hash keeps the chain
    intact; the checkpoints signed before the rewrite still expose it."""
    checkpoints = sign_checkpoints(events, [len(events)], key[0])
    rewritten, prev = [], bytes(32)
    for event in events:
        body = json.loads(event.body)
        body["prev_hash"] = prev.hex()
        for leg in body["legs"]:
            if body["type"] == "mint":
                leg["amount"] *= 2
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        prev = hashlib.sha256(prev + leaf_hash(data)).digest()
        rewritten.append(type(event)(event.seq, data, prev))

    findings = audit(rewritten, checkpoints)
    assert not any(f.startswith("seq ") for f in findings)
    assert any("signed root" in f for f in findings)
    assert any("signed liabilities" in f for f in findings)


def test_wrong_state_sum_broken_prev_and_missing_events_are_findings(events, key):
    good = sign_checkpoints(events, [10, 20], key[0])
    second = good[1][1]
    inflated = dataclasses.replace(second, state_sum=second.state_sum + 1)
    unchained = dataclasses.replace(second, prev_hash=bytes(32))
    beyond = dataclasses.replace(second, height=3, tree_size=len(events) + 5)
    cases = {
        "signed liabilities": [good[0], (sign_checkpoint(inflated, key[0]), inflated)],
        "prev is not the hash": [good[0], (sign_checkpoint(unchained, key[0]), unchained)],
        "but the log has only": [*good, (sign_checkpoint(beyond, key[0]), beyond)],
    }
    for expected, checkpoints in cases.items():
        assert any(expected in f for f in audit(events, checkpoints)), expected
    assert any("gap or reorder" in f for f in audit(events[:5] + events[6:], good))


def test_verify_log_rejects_checkpoints_signed_by_another_key(events, key):
    checkpoints = sign_checkpoints(events, [len(events)], key[0])
    other_signer, _ = generate_signer(ORIGIN)
    forged = sign_checkpoints(events, [len(events)], other_signer)
    lines = [
        json.dumps({"seq": e.seq, "body": base64.b64encode(e.body).decode(),
                    "hash": e.hash.hex()})
        for e in events
    ]
    findings, _ = verify_log(lines, [checkpoints[0][0], forged[0][0]], key[1])
    assert [f.where for f in findings] == ["checkpoint #2"]
    assert "bad_signature" in findings[0].message or "key_id" in findings[0].message


def test_the_offline_verifier_imports_no_django_and_no_ledger_code():
    code = (
        "import sys, proofs.verify\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('django', 'ledger', 'attestation', 'orjson', 'rocksdict', 'celery', 'config'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPOSITORY_ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
