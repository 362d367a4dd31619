"""The sealer over a real RocksDB event store and seal store, without Django.

Traffic comes from the event-store contract's `Driver`/`Workload` (every event type, holds
that expire, freezes, promo, fees), written exactly as the writer writes it. The sealer's
trees must match what an independent recomputation from the log gives, at every size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from attestation.sealer import NotSealed, Sealer, SealReader, SealRefused, SigningKey
from attestation.store import SealStore, SealStoreError
from ledger.core.canonical import encode as canonical_encode
from ledger.core.chain import leaf_hash
from ledger.eventstore.rocks import RocksEventStore
from proofs.core.checkpoint import GENESIS_PREV_HASH, note_hash, open_checkpoint
from proofs.core.note import generate_signer
from proofs.core.proof_json import verify_consistency_proof, verify_inclusion_proof
from proofs.core.rfc9162 import root_from_leaf_hashes
from proofs.core.sumtree import verify_balance_proof
from proofs.ledger_state import decode_leaf
from tests.unit.eventstore_contract import LEDGER, Driver, Workload

ORIGIN = f"ledgerfs.test/{LEDGER}"


def signing_key(origin: str = ORIGIN) -> SigningKey:
    signer, verifier = generate_signer(origin)
    return SigningKey(origin, signer, verifier)


class SealedLog:
    """A shard with traffic and a sealer over it, in `root`."""

    def __init__(self, root: Path, *, seed: int = 1, max_block_events: int = 1_000) -> None:
        self.root = root
        self.store = RocksEventStore(root / "events", LEDGER)
        self.driver = Driver(self.store)
        self.workload = Workload(self.driver, seed)
        self.key = signing_key()
        self.seals = SealStore(root / "seals", LEDGER)
        self.sealer = Sealer(self.store, self.seals, self.key, max_block_events=max_block_events)

    def traffic(self, groups: int) -> None:
        for _ in range(groups):
            self.workload.group()

    def seal_all(self) -> list:
        results = []
        while (result := self.sealer.seal()) is not None:
            results.append(result)
        return results

    def leaf_hashes(self) -> list[bytes]:
        return [leaf_hash(event.body) for event in self.store.read()]

    def close(self) -> None:
        self.seals.close()
        self.store.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[SealedLog]:
    sealed = SealedLog(tmp_path)
    yield sealed
    sealed.close()


def test_a_seal_covers_the_whole_log_and_its_state_sum_is_the_outstanding_liabilities(log):
    log.traffic(150)
    results = log.seal_all()

    head = log.sealer.head()
    assert head.tree_size == log.store.head()[0] + 1
    assert len(results) == head.height >= 1
    checkpoint = open_checkpoint(log.sealer.checkpoint().note, log.key.verifier)
    assert checkpoint.origin == ORIGIN
    assert checkpoint.tree_size == head.tree_size
    assert checkpoint.root_hash == root_from_leaf_hashes(log.leaf_hashes())
    assert checkpoint.state_sum == log.driver.state.outstanding() > 0
    assert log.sealer.seal() is None  # nothing new


def test_state_leaves_are_the_ledgers_account_states(log):
    log.traffic(150)
    log.seal_all()
    height = log.sealer.head().height
    accounts = log.store.load().accounts.values()

    assert log.sealer.head().state_size == len(accounts)
    for account in accounts:
        leaf = decode_leaf(log.seals.leaf_at(account.position, height))
        assert (leaf.id, leaf.buckets, leaf.last_seq) == (
            account.id, account.balances, account.last_seq
        )
        assert log.seals.position(account.id) == account.position


def test_blocks_and_checkpoints_chain_and_cover_consecutive_ranges(tmp_path):
    log = SealedLog(tmp_path, max_block_events=37)
    try:
        for _ in range(4):
            log.traffic(20)
            log.seal_all()
        head = log.sealer.head()
        previous_header = bytes(32)
        previous_note_hash = GENESIS_PREV_HASH
        next_seq = 0
        for height in range(1, head.height + 1):
            header = log.seals.block(height)
            assert header["height"] == height
            assert header["first_seq"] == next_seq
            assert header["last_seq"] - header["first_seq"] + 1 <= 37
            assert header["prev_header_hash"] == previous_header.hex()
            leaves = log.leaf_hashes()[header["first_seq"]:header["last_seq"] + 1]
            assert header["block_root"] == root_from_leaf_hashes(leaves).hex()
            note = log.seals.checkpoint(height).note
            checkpoint = open_checkpoint(note, log.key.verifier)
            assert checkpoint.prev_hash == previous_note_hash
            assert (checkpoint.height, checkpoint.tree_size) == (height, header["tree_size"])
            assert checkpoint.state_root.hex() == header["state_root"]
            previous_header = hashlib.sha256(canonical_encode(header)).digest()
            previous_note_hash = note_hash(note)
            next_seq = header["last_seq"] + 1
        assert next_seq == head.tree_size
        assert previous_header.hex() == head.header_hash
    finally:
        log.close()


def test_inclusion_at_every_size_and_consistency_between_every_pair(tmp_path):
    log = SealedLog(tmp_path, max_block_events=7)
    try:
        log.traffic(6)
        log.seal_all()
        reader = SealReader(log.seals)  # proofs from the stored nodes alone
        leaves = log.leaf_hashes()
        n = len(leaves)
        assert n == reader.head().tree_size and n >= 30
        roots = [root_from_leaf_hashes(leaves[:size]) for size in range(n + 1)]
        for size in range(1, n + 1):
            for seq in range(size):
                proof = reader.inclusion_proof(seq, size)
                assert proof["leaf_hash"] == leaves[seq].hex()
                verify_inclusion_proof(proof, roots[size])
            for first in range(1, size + 1):
                verify_consistency_proof(
                    reader.consistency_proof(first, size), roots[first], roots[size]
                )
    finally:
        log.close()


def test_balance_proofs_at_every_sealed_height_sum_to_that_heights_liabilities(tmp_path):
    log = SealedLog(tmp_path, max_block_events=50)
    try:
        log.traffic(40)
        log.seal_all()
        head = log.sealer.head()
        assert head.height >= 3
        reader = SealReader(log.seals)
        for height in (*range(head.height, 0, -1), *range(1, head.height + 1)):
            checkpoint = open_checkpoint(log.seals.checkpoint(height).note, log.key.verifier)
            block = log.seals.block(height)
            for position in range(block["state_size"]):
                account = decode_leaf(log.seals.leaf_at(position, height)).id
                for source in (reader, log.sealer):
                    _, proof = source.balance_proof(account, height)
                    verify_balance_proof(proof, checkpoint.state_root, checkpoint.state_sum)
        with pytest.raises(NotSealed):
            reader.balance_proof("acc_eur_unknown", head.height)
    finally:
        log.close()


def test_a_restarted_sealer_continues_the_same_chain(log, tmp_path):
    log.traffic(30)
    log.seal_all()
    before = log.sealer.head()
    log.seals.close()
    log.seals = SealStore(tmp_path / "seals", LEDGER)
    log.sealer = Sealer(log.store, log.seals, log.key)

    assert log.sealer.head() == before
    log.traffic(30)
    [result] = log.seal_all()
    assert result.header["prev_header_hash"] == before.header_hash
    checkpoint = open_checkpoint(result.checkpoint.note, log.key.verifier)
    assert checkpoint.prev_hash.hex() == before.note_hash
    assert checkpoint.root_hash == root_from_leaf_hashes(log.leaf_hashes())
    assert checkpoint.state_sum == log.driver.state.outstanding()


def test_a_failed_seal_write_leaves_nothing_behind_and_the_next_seal_succeeds(log, monkeypatch):
    log.traffic(20)
    log.seal_all()
    before = log.sealer.head()
    log.traffic(20)

    def broken(**kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(log.seals, "write_seal", broken)
    with pytest.raises(OSError):
        log.sealer.seal()
    monkeypatch.undo()
    assert log.sealer.head() == before == log.seals.head()
    [result] = log.seal_all()
    checkpoint = open_checkpoint(result.checkpoint.note, log.key.verifier)
    assert checkpoint.root_hash == root_from_leaf_hashes(log.leaf_hashes())
    assert checkpoint.state_sum == log.driver.state.outstanding()


def test_the_sealer_refuses_to_sign_a_log_that_does_not_continue_the_chain(log):
    log.traffic(10)
    log.seal_all()
    sealed = log.sealer.head()
    log.traffic(10)
    # Rewrite the first unsealed event's body behind the store's back.
    event = log.store.get(sealed.tree_size)
    log.store._db.get_column_family("log").put(
        event.seq.to_bytes(8, "big"), event.hash + event.body.replace(b'"seq"', b'"seq" ')
    )
    with pytest.raises(SealRefused):
        log.sealer.seal()
    assert log.sealer.head() == sealed


def test_the_sealer_refuses_when_a_sealed_event_changed(log):
    log.traffic(10)
    log.seal_all()
    last = log.store.get(log.sealer.head().tree_size - 1)
    log.store._db.get_column_family("log").put(
        last.seq.to_bytes(8, "big"), bytes(32) + last.body
    )
    log.traffic(2)
    with pytest.raises(SealRefused, match="sealed as"):
        log.sealer.seal()


def test_a_seal_store_of_another_ledger_is_refused(tmp_path):
    SealStore(tmp_path / "seals", "EUR").close()
    with pytest.raises(SealStoreError, match="seals ledger 'EUR'"):
        SealStore(tmp_path / "seals", "USD")
