"""`FollowerStore`: a secondary instance that catches up with its writer only when it must."""

from __future__ import annotations

from pathlib import Path

from ledger.eventstore.rocks import RocksEventStore
from ledger.shards import FollowerRegistry, FollowerStore
from tests.unit.eventstore_contract import LEDGER, Driver, cmd


def test_a_read_at_a_seq_the_follower_holds_does_not_catch_up(tmp_path: Path) -> None:
    writer_store = RocksEventStore(tmp_path / "db", LEDGER)
    driver = Driver(writer_store)
    (account,) = driver.open_accounts(1, balance=10)
    asked: list[int] = []

    def head_source() -> int:
        asked.append(1)
        return writer_store.head()[0]

    follower = FollowerStore(
        lambda: RocksEventStore(tmp_path / "db", LEDGER, secondary_path=tmp_path / "s"),
        head_source,
    )
    try:
        seq = follower.head()[0]
        assert seq == writer_store.head()[0]
        driver.run([cmd("burn", account=account, amount=4)])  # the writer moves on
        asked.clear()
        catch_ups = follower.catch_ups
        assert follower.account_snapshot_at(account, seq) == (0, 10, 0, 0, 0, 0)
        assert follower.account_snapshots_at([(account, seq)]) == [(0, 10, 0, 0, 0, 0)]
        assert (asked, follower.catch_ups) == ([], catch_ups)
        # Beyond what it holds, it asks for the writer's head and catches up first.
        assert follower.account_snapshot_at(account, seq + 1) == (0, 6, 0, 0, 0, 0)
        assert asked and follower.catch_ups == catch_ups + 1
    finally:
        follower.close()
        writer_store.close()


def test_a_registry_opens_every_existing_shard_ahead_of_use(tmp_path: Path, caplog) -> None:
    root = tmp_path / "shards"
    writers = [RocksEventStore(root / code, code) for code in ("EUR", "USD")]
    (root / "GBP").mkdir()
    (root / "GBP" / "CURRENT").write_text("not a RocksDB manifest name\n")  # cannot be opened
    registry = FollowerRegistry(root, tmp_path / "secondary", lambda code: None)
    try:
        assert registry.open_existing() == ["EUR", "USD"]
        # Opened then, not on first use: each has its secondary instance's files already,
        # and asking for the shard again gives the instance opened.
        for code in ("EUR", "USD"):
            (instance,) = (tmp_path / "secondary" / code).iterdir()
            assert any(instance.iterdir())
        eur = registry.get("EUR")
        assert registry.get("EUR") is eur and eur.store.head()[0] == writers[0].head()[0]
        assert "ledger GBP not opened at start-up" in caplog.text
    finally:
        registry.close()
        for writer in writers:
            writer.close()
