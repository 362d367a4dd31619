"""The event-store contract run against `RocksEventStore`, plus what only a disk can show:
reopening, the ledger check, read-only and secondary readers, tampering with the stored log,
and the atomicity of one group commit when the writer is killed mid-stream."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import orjson
import pytest
from rocksdict import Options, Rdict

from ledger.core.chain import ChainBroken, verify_chain
from ledger.eventstore.port import EventStore, EventStoreError
from ledger.eventstore.rocks import RocksEventStore
from ledger.replay import compare_states, replay, verify_tail
from tests.unit.eventstore_contract import LEDGER, Driver, EventStoreContract, Workload, cmd


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "eur.rocksdb"


class TestRocksEventStore(EventStoreContract):
    def make_store(self, tmp_path: Path) -> EventStore:
        return RocksEventStore(db_path(tmp_path), LEDGER)

    def reopen(self, store: EventStore, tmp_path: Path) -> EventStore:
        store.close()
        return RocksEventStore(db_path(tmp_path), LEDGER)


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """A closed store holding genesis, a few accounts and 20 groups of random traffic."""
    store = RocksEventStore(db_path(tmp_path), LEDGER)
    workload = Workload(Driver(store), seed=3)
    for _ in range(20):
        workload.group()
    store.close()
    return db_path(tmp_path)


def tamper(path: Path, family: str, key: bytes, value: bytes | None) -> None:
    """Change one stored record behind the store's back (None deletes it)."""
    db = Rdict(str(path))  # opens every column family of an existing database, raw
    column = db.get_column_family(family)
    if value is None:
        del column[key]
    else:
        column[key] = value
    column.close()
    db.close()


def stored_value(path: Path, family: str, key: bytes) -> bytes:
    db = Rdict(str(path))
    column = db.get_column_family(family)
    value = column[key]
    column.close()
    db.close()
    return value


def test_reopen_keeps_everything(written: Path) -> None:
    store = RocksEventStore(written, LEDGER)
    replayed, count = replay(store)
    assert compare_states(store.load(), replayed) == []
    assert count == store.head()[0] + 1 > 40
    store.close()


def test_opening_a_store_of_another_ledger_fails(written: Path) -> None:
    with pytest.raises(EventStoreError, match="holds ledger 'EUR', not ledger 'USD'"):
        RocksEventStore(written, "USD")
    RocksEventStore(written, LEDGER).close()  # the failed open released the database


def test_a_database_with_families_of_the_older_layout_still_opens(written: Path) -> None:
    """The layout once had `by_id` and `accounts` families; RocksDB refuses to open a database
    without naming all of its families, so the store opens them and leaves them alone."""
    db = Rdict(str(written))
    db.create_column_family("by_id", Options(raw_mode=True)).close()
    db.close()
    store = RocksEventStore(written, LEDGER)
    replayed, _ = replay(store)
    assert compare_states(store.load(), replayed) == []
    store.close()


def _family_sections(path: Path) -> dict[str, str]:
    """Each column family's options as RocksDB itself wrote them to its newest OPTIONS file."""
    newest = max(path.glob("OPTIONS-*"), key=lambda file: int(file.name.split("-")[1]))
    sections = {}
    for block in newest.read_text().split("\n[")[1:]:
        header, _, body = block.partition("\n")
        if header.startswith('CFOptions "'):
            sections[header.split('"')[1]] = body
    return sections


def test_only_the_idempotency_family_filters_its_memtables(written: Path) -> None:
    """The writer asks the idem family about every key of a group; the other families are
    only read at start-up or by readers, where a memtable filter would cost memory for nothing."""
    RocksEventStore(written, LEDGER).close()
    sections = _family_sections(written)
    assert "memtable_whole_key_filtering=true" in sections["idem"]
    assert "memtable_prefix_bloom_size_ratio=0.020000" in sections["idem"]
    for family in ("log", "by_account", "meta"):
        assert "memtable_prefix_bloom_size_ratio=0.000000" in sections[family]


def test_the_families_written_at_random_places_have_smaller_write_buffers(
        written: Path) -> None:
    """Idempotency keys and per-account as-of keys land anywhere in their memtables; smaller
    memtables keep those skip lists in the CPU's caches (see rocks.py for the measurements)."""
    RocksEventStore(written, LEDGER).close()
    sections = _family_sections(written)
    assert f"write_buffer_size={8 << 20}" in sections["idem"]
    assert f"write_buffer_size={16 << 20}" in sections["by_account"]
    assert f"write_buffer_size={64 << 20}" in sections["log"]


def test_opening_an_unusable_path_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a database")
    with pytest.raises(EventStoreError, match="cannot open"):
        RocksEventStore(tmp_path / "file", LEDGER)


def test_read_only_and_secondary_readers_follow_the_writer(tmp_path: Path) -> None:
    writer_store = RocksEventStore(db_path(tmp_path), LEDGER)
    driver = Driver(writer_store)
    (account,) = driver.open_accounts(1, balance=10)
    reader = RocksEventStore(db_path(tmp_path), LEDGER, read_only=True)
    secondary = RocksEventStore(
        db_path(tmp_path), LEDGER, secondary_path=tmp_path / "secondary"
    )
    assert reader.head() == secondary.head() == writer_store.head()
    driver.run([cmd("burn", account=account, amount=4)])
    assert secondary.head() != writer_store.head()
    secondary.catch_up()
    assert secondary.head() == writer_store.head()
    assert secondary.account_snapshot_at(account, 10**6) == (0, 6, 0, 0, 0, 0)
    assert compare_states(secondary.load(), driver.state) == []
    with pytest.raises(EventStoreError, match="not ledger 'USD'"):
        RocksEventStore(db_path(tmp_path), "USD", read_only=True)
    for store in (reader, secondary, writer_store):
        store.close()


# -- tampering ---------------------------------------------------------------------------------


def test_a_changed_byte_in_a_stored_body_breaks_the_chain_at_its_seq(written: Path) -> None:
    seq = 17
    key = seq.to_bytes(8, "big")
    value = bytearray(stored_value(written, "log", key))
    position = value.index(b'"seq":') + len(b'"seq":')
    assert value[position:position + 2] == b"17"
    value[position + 1:position + 2] = b"8"  # "seq":18 in event 17's body: still valid JSON
    tamper(written, "log", key, bytes(value))

    store = RocksEventStore(written, LEDGER)
    head_seq = store.head()[0]
    with pytest.raises(ChainBroken, match="at seq 17") as broken:
        verify_chain(store.read())
    assert broken.value.seq == seq
    with pytest.raises(ChainBroken) as broken:
        replay(store)
    assert broken.value.seq == seq
    with pytest.raises(ChainBroken) as broken:
        verify_tail(store, head_seq - seq + 1)
    assert broken.value.seq == seq
    verify_tail(store, head_seq - seq)  # the tail after it still chains to its stored hash
    store.close()


def test_a_changed_amount_is_caught_by_the_hash(written: Path) -> None:
    store = RocksEventStore(written, LEDGER)
    seq = next(e.seq for e in store.read(after_seq=10) if b'"amount":' in e.body)
    store.close()
    key = seq.to_bytes(8, "big")
    value = bytearray(stored_value(written, "log", key))
    # The last digit of the first leg's amount: changing it keeps the JSON valid.
    last_digit = value.index(b',"bucket"', value.index(b'"amount":')) - 1
    value[last_digit] = ord("1") if value[last_digit] != ord("1") else ord("2")
    tamper(written, "log", key, bytes(value))

    store = RocksEventStore(written, LEDGER)
    with pytest.raises(ChainBroken, match="body hashes to") as broken:
        replay(store)
    assert broken.value.seq == seq
    store.close()


def test_a_deleted_event_leaves_a_gap(written: Path) -> None:
    tamper(written, "log", (5).to_bytes(8, "big"), None)
    store = RocksEventStore(written, LEDGER)
    with pytest.raises(ChainBroken, match="found seq 6 where 5 was due"):
        replay(store)
    store.close()


def test_a_log_shorter_than_its_head_is_caught(written: Path) -> None:
    store = RocksEventStore(written, LEDGER)
    head_seq = store.head()[0]
    store.close()
    tamper(written, "log", head_seq.to_bytes(8, "big"), None)
    store = RocksEventStore(written, LEDGER)
    with pytest.raises(ChainBroken, match=f"log ends at seq {head_seq - 1}, expected {head_seq}"):
        replay(store)
    with pytest.raises(ChainBroken, match="log ends"):
        verify_tail(store, 3)
    store.close()


# -- atomicity -----------------------------------------------------------------------------------


def _write_until_killed(path: str, seed: int, ready: Event) -> None:
    store = RocksEventStore(path, LEDGER)
    workload = Workload(Driver(store), seed=seed, accounts=40)
    for group in itertools.count():
        workload.group()
        if group == 20:
            ready.set()


@pytest.mark.parametrize("delay_seconds", [0.05, 0.13, 0.31])
def test_a_group_commit_is_all_or_nothing_when_the_writer_is_killed(
    tmp_path: Path, delay_seconds: float
) -> None:
    # spawn, not fork: this process already runs RocksDB background threads, and a forked
    # child could inherit one of their locks held.
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    writer = context.Process(
        target=_write_until_killed, args=(str(db_path(tmp_path)), 11, ready)
    )
    writer.start()
    try:
        assert ready.wait(30), "the writer did not get going"
        # Let it write some more groups, then kill it wherever it is.
        time.sleep(delay_seconds)
    finally:
        os.kill(writer.pid, signal.SIGKILL)  # type: ignore[arg-type]
        writer.join()

    store = RocksEventStore(db_path(tmp_path), LEDGER)
    stored = store.load()
    replayed, count = replay(store)  # the head and the log agree, and the log chains
    assert count == stored.next_seq > 40
    # Every index entry of every logged event made it, and none of a group that did not.
    assert compare_states(stored, replayed) == []
    for event in store.read():
        body = orjson.loads(event.body)
        assert store.seq_of_event(body["id"]) == event.seq
        assert store.seq_at_time(body["ts"]) >= event.seq
        for leg in body["legs"]:
            assert event.seq in store.account_seqs(leg["account"], after_seq=event.seq - 1,
                                                   limit=1)
    assert store.seq_at_time(2**63) == count - 1
    store.close()
