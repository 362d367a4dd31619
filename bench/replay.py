"""Replay speed: rebuilding a shard from its log, the writer's start-up, the read-model rebuild.

1. Log: `--accounts` accounts opened and funded, then `--events` uniform transfers, written by
   the real writer (engine helpers `fund` and `transfers`, groups of 8,000 commands) to a fresh
   RocksDB shard in a temporary directory. The log holds one event per command plus the two
   genesis events. The writer's live state is kept as the reference; the store is closed.
2. Start-up: the store reopened (`open_seconds`), then `Writer.recover()` on it: load the
   stored current state (every account and hold) and re-hash the last 10,000 events of the chain
   (`recover_seconds`). The recovered state must equal the live one.
3. Replay: `ledger.replay.replay` from seq 0 into a fresh state: every event's chain hash
   verified (`verify_chain`, a chunk at a time) before its body is applied with the writer's
   own `apply_event`; then `compare_states` against the writer's live state and against the
   stored current state (`store.load()`), as a verification run would.
   `replay_events_per_s` covers replay alone, `replay_verified_events_per_s` replay plus both
   comparisons (and the load of the stored state).
4. Read model (skipped with `--no-projector`): Django set up in this process with the normal
   settings on a temporary `LEDGERFS_DATA_DIR` (SQLite, projector and monitor threads off, no
   DATABASE_URL/REDIS_URL), migrated (`django_setup_seconds`), then `ledger.projector.rebuild`
   from seq 0 (`projector_*`), then every projected account row (balances, status, last seq,
   position) and the number of holds compared with the replayed state.

`*_differences` count the lines `compare_states` (or the row check) reported; 0 means equal,
and the first few are listed under `differences` otherwise. The scenario reports rather than
raises, so a damaged figure is still visible; the test and the suite check the counts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.engine import fund, transfers
from ledger.core.commands import Request
from ledger.core.state import LedgerState
from ledger.eventstore.rocks import RocksEventStore
from ledger.replay import compare_states, replay
from ledger.writer import TAIL_VERIFY_EVENTS, Writer

LEDGER = "BENCH"
GROUP = 8_000
SHOWN_DIFFERENCES = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=300_000, help="transfers in the log")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--no-projector", action="store_true",
                        help="skip the read-model rebuild (no Django)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ledgerfs-bench-", dir=args.data_dir) as tmp:
        root = Path(tmp)
        path = root / "events"
        live, build_seconds = _build(path, args.accounts, args.events, args.seed)
        events = live.next_seq
        result: dict = {
            "scenario": "replay", "transfers": args.events, "accounts": args.accounts,
            "events": events, "build_seconds": round(build_seconds, 3),
        }
        differences: list[str] = []

        started = time.perf_counter()
        store = RocksEventStore(path, LEDGER)
        opened = time.perf_counter()
        try:
            writer = Writer(store)
            writer.recover()
            recovered = time.perf_counter()
            found = compare_states(writer.machine.state, live)
            differences += found
            result.update({
                "open_seconds": round(opened - started, 3),
                "recover_seconds": round(recovered - opened, 3),
                "recover_tail_events": min(TAIL_VERIFY_EVENTS, events),
                "recover_accounts": len(writer.machine.state.accounts),
                "recover_differences": len(found),
            })
            del writer

            started = time.perf_counter()
            replayed, count = replay(store)
            replayed_at = time.perf_counter()
            against_live = compare_states(replayed, live)
            against_stored = compare_states(store.load(), replayed)
            compared = time.perf_counter()
            differences += against_live + against_stored
            result.update({
                "replayed_events": count,
                "replay_seconds": round(replayed_at - started, 3),
                "replay_events_per_s": round(count / (replayed_at - started)),
                "compare_seconds": round(compared - replayed_at, 3),
                "replay_verified_seconds": round(compared - started, 3),
                "replay_verified_events_per_s": round(count / (compared - started)),
                "replay_live_differences": len(against_live),
                "replay_stored_differences": len(against_stored),
            })
            if not args.no_projector:
                found, figures = _projector(root / "django", store, replayed)
                differences += found
                result.update(figures)
        finally:
            store.close()
    result["differences"] = differences[:SHOWN_DIFFERENCES]
    return result


def _build(path: Path, accounts: int, count: int, seed: int) -> tuple[LedgerState, float]:
    """Write the log with the real writer; returns its live state and the seconds it took.

    The WAL is not synced per group: durability is not what is measured here, and the bytes
    written are the same."""
    started = time.perf_counter()
    store = RocksEventStore(path, LEDGER, sync=False)
    writer = Writer(store).start()
    try:
        commands = transfers(fund(writer, accounts), count, False, seed)
        for start in range(0, len(commands), GROUP):
            results = writer.execute(Request(commands[start:start + GROUP]), timeout=120)
            if not all(r.ok for r in results):
                raise RuntimeError("a transfer of the generated log was rejected")
    finally:
        writer.stop()
        store.close()
    return writer.machine.state, time.perf_counter() - started


def _projector(data_dir: Path, store: RocksEventStore, replayed: LedgerState
               ) -> tuple[list[str], dict]:
    """Migrate a fresh SQLite read model, rebuild it from seq 0 and check it row by row."""
    started = time.perf_counter()
    _django(data_dir)
    from django.core.management import call_command

    from ledger.models import Account, Hold, Ledger
    from ledger.projector import rebuild

    call_command("migrate", verbosity=0)
    ledger = Ledger.objects.create(code=LEDGER, scale=2)
    migrated = time.perf_counter()
    applied = rebuild(ledger, store)
    rebuilt = time.perf_counter()

    differences = []
    rows = {a.id: a for a in Account.objects.filter(ledger=ledger)}
    for account_id in sorted(rows.keys() | replayed.accounts.keys()):
        row, account = rows.get(account_id), replayed.accounts.get(account_id)
        if row is None or account is None:
            differences.append(f"read model account {account_id}: only in "
                               f"{'the replay' if row is None else 'the read model'}")
        elif (row.balances, row.status, row.last_seq, row.position) != (
                account.balances, account.status, account.last_seq, account.position):
            differences.append(f"read model account {account_id}: {row.balances} "
                               f"{row.status} {row.last_seq} != {account.balances} "
                               f"{account.status} {account.last_seq}")
    holds = Hold.objects.filter(ledger=ledger).count()
    if holds != len(replayed.holds):
        differences.append(f"read model holds: {holds} != {len(replayed.holds)}")
    return differences, {
        "django_setup_seconds": round(migrated - started, 3),
        "projector_database": "sqlite",
        "projector_events": applied,
        "projector_seconds": round(rebuilt - migrated, 3),
        "projector_events_per_s": round(applied / (rebuilt - migrated)),
        "projector_differences": len(differences),
    }


def _django(data_dir: Path) -> None:
    """Set Django up in this process on its own SQLite database under `data_dir`."""
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("the replay scenario sets Django up itself: run it in its own "
                           "process (python -m bench replay)")
    data_dir.mkdir(parents=True)
    for name in ("DATABASE_URL", "REDIS_URL", "LEDGERFS_ENV", "LEDGERFS_BUS"):
        os.environ.pop(name, None)
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "LEDGERFS_DATA_DIR": str(data_dir),
        "LEDGERFS_PROJECTOR": "manual", "LEDGERFS_MONITOR": "off", "LEDGERFS_BEAT": "off",
    })
    import django

    django.setup()
