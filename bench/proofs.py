"""Proofs and sealing: inclusion-proof latency over a large log, verification, seal throughput
and sealing lag under sustained load.

1. Tree: `--leaves` (default 1,000,000) synthetic leaf hashes appended to a seal store's
   RocksDB node store in chunks, exactly as the sealer stores nodes (no writer involved).
2. Inclusion proofs: `--samples` random leaves, at the full size and at random older sizes,
   generated from the stored nodes the way a proof reader does (a fresh `MerkleTree` over the
   node store per proof); consistency proofs between random sizes. p50/p95/p99 in µs.
3. Verification: the DESIGN 5 JSON inclusion proofs checked against their root (µs).
4. Sealing throughput: `--events` events written by the real writer (transfers among
   `--accounts` accounts) to a RocksDB event store, then sealed from it: events integrated
   per second, chain verification, state tree, signing and one synced write per block
   included.
5. Sealing lag: the writer takes `--lag-rate` transfers/s (default 25,000, about what the
   whole product sustains over HTTP; 0 streams them as fast as the writer goes) for
   `--lag-seconds` while a sealer thread seals every `--interval-ms` (the beat cadence), as in
   embedded mode (one process, shared store). Lag = time from an event's commit to the end of
   the seal that covers it.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import threading
import time
from bisect import bisect_left
from collections import deque
from pathlib import Path

from attestation.sealer import Sealer, SigningKey
from attestation.store import SealNodeStore, SealStore
from bench.engine import fund, transfers
from bench.stats import percentile
from ledger.core.commands import Command, Request
from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import Writer
from proofs.core.note import generate_signer
from proofs.core.proof_json import verify_inclusion_proof
from proofs.core.tree import MerkleTree

LEDGER = "BENCH"
TREE_CHUNK = 100_000
WRITE_BATCH = 2_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--leaves", type=int, default=1_000_000, help="synthetic tree size")
    parser.add_argument("--samples", type=int, default=20_000, help="proofs to time")
    parser.add_argument("--events", type=int, default=200_000, help="events to seal")
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--lag-seconds", type=float, default=20.0)
    parser.add_argument("--interval-ms", type=int, default=1_000, help="seal cadence")
    parser.add_argument("--lag-rate", type=int, default=25_000,
                        help="transfers/s offered during the lag phase (0: as fast as the "
                             "writer goes)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="ledgerfs-bench-", dir=args.data_dir) as tmp:
        root = Path(tmp)
        result = {"scenario": "proofs"}
        result.update(_tree_and_proofs(root / "tree", args.leaves, args.samples, rng))
        result.update(_seal_throughput(root / "throughput", args.events, args.accounts, rng))
        result.update(_seal_lag(root / "lag", args.accounts, args.lag_seconds,
                                args.interval_ms / 1000, args.lag_rate, rng))
    return result


def _us(values: list[float], fraction: float) -> float:
    return round(percentile(values, fraction) * 1e6, 1)


def _tree_and_proofs(root: Path, leaves: int, samples: int, rng: random.Random) -> dict:
    seals = SealStore(root, LEDGER, sync=False)
    try:
        nodes = SealNodeStore(seals)
        tree = MerkleTree(nodes)
        started = time.perf_counter()
        for start in range(0, leaves, TREE_CHUNK):
            end = min(start + TREE_CHUNK, leaves)
            tree.extend(hashlib.sha256(b"leaf %d" % i).digest() for i in range(start, end))
            seals.write_nodes(nodes.take())
        build_seconds = time.perf_counter() - started

        full, older, verify, consistency = [], [], [], []
        for _ in range(samples):
            index = rng.randrange(leaves)
            size = rng.randint(index + 1, leaves)
            for tree_size, times in ((leaves, full), (size, older)):
                started = time.perf_counter()
                proof = MerkleTree(SealNodeStore(seals), leaves).inclusion_proof(index, tree_size)
                times.append(time.perf_counter() - started)
            root_hash = bytes.fromhex(proof["root_hash"])
            started = time.perf_counter()
            verify_inclusion_proof(proof, root_hash)
            verify.append(time.perf_counter() - started)
            first = rng.randint(1, leaves)
            started = time.perf_counter()
            MerkleTree(SealNodeStore(seals), leaves).consistency_proof(first, leaves)
            consistency.append(time.perf_counter() - started)
    finally:
        seals.close()
    return {
        "tree_leaves": leaves,
        "tree_build_leaves_per_s": round(leaves / build_seconds),
        "inclusion_p50_us": _us(full, 0.50),
        "inclusion_p95_us": _us(full, 0.95),
        "inclusion_p99_us": _us(full, 0.99),
        "inclusion_older_size_p95_us": _us(older, 0.95),
        "consistency_p95_us": _us(consistency, 0.95),
        "verify_inclusion_p50_us": _us(verify, 0.50),
        "verify_inclusion_p95_us": _us(verify, 0.95),
    }


def _writer(root: Path, accounts: int) -> tuple[RocksEventStore, Writer, list[str]]:
    store = RocksEventStore(root / "events", LEDGER)
    writer = Writer(store).start()
    return store, writer, fund(writer, accounts)


def _sealer(root: Path, store: RocksEventStore) -> Sealer:
    signer, verifier = generate_signer(f"bench.local/{LEDGER}")
    seals = SealStore(root / "seals", LEDGER)
    return Sealer(store, seals, SigningKey(f"bench.local/{LEDGER}", signer, verifier))


def _seal_throughput(root: Path, events: int, accounts: int, rng: random.Random) -> dict:
    store, writer, ids = _writer(root, accounts)
    try:
        commands = transfers(ids, events, False, rng.randrange(2**31))
        for start in range(0, len(commands), 8_000):
            writer.execute(Request(commands[start:start + 8_000]))
    finally:
        writer.stop()
    sealer = _sealer(root, store)
    try:
        started = time.perf_counter()
        blocks = 0
        while sealer.seal() is not None:
            blocks += 1
        seconds = time.perf_counter() - started
        sealed = sealer.head().tree_size
    finally:
        sealer.seals.close()
        store.close()
    return {
        "seal_events": sealed, "seal_blocks": blocks, "seal_seconds": round(seconds, 3),
        "seal_events_per_s": round(sealed / seconds),
    }


def _pairs(ids: list[str], count: int, rng: random.Random) -> list[tuple[str, str]]:
    return [tuple(rng.sample(ids, 2)) for _ in range(count)]


def _seal_lag(root: Path, accounts: int, seconds: float, interval: float, rate: int,
              rng: random.Random) -> dict:
    store, writer, ids = _writer(root, accounts)
    sealer = _sealer(root, store)
    while sealer.seal() is not None:  # the funding events are not part of the measurement
        pass
    first_seq = sealer.head().tree_size
    commits: list[tuple[int, float]] = []  # (last seq of a group, commit time)
    writer.on_commit = lambda last_seq: commits.append((last_seq, time.perf_counter()))
    seals: list[tuple[int, float]] = []  # (sealed size, end of the seal)
    stop = threading.Event()

    def seal_every_interval() -> None:
        # Fixed-rate ticks, as beat's schedule: a long seal delays only the next tick.
        tick = time.perf_counter()
        while True:
            tick += interval
            if stop.wait(max(tick - time.perf_counter(), 0)):
                return
            while sealer.seal() is not None:
                seals.append((sealer.head().tree_size, time.perf_counter()))

    thread = threading.Thread(target=seal_every_interval, name="bench-sealer")
    thread.start()
    written = 0
    pending: deque = deque()
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds:
            batch = [
                Command("transfer", f"lag-{written + i}", client="bench",
                        account=a, to=b, amount=1)
                for i, (a, b) in enumerate(_pairs(ids, WRITE_BATCH, rng))
            ]
            if len(pending) >= 4:
                pending.popleft().result(60)
            if rate:  # an offered rate: the next batch is due when the previous ones are
                time.sleep(max(started + written / rate - time.perf_counter(), 0))
            pending.append(writer.submit(Request(batch)))
            written += len(batch)
        while pending:
            pending.popleft().result(60)
        write_seconds = time.perf_counter() - started
        backlog = store.head()[0] + 1 - sealer.head().tree_size
        stop.set()
        thread.join()
        while sealer.seal() is not None:  # drain, so every commit has a seal
            seals.append((sealer.head().tree_size, time.perf_counter()))
    finally:
        stop.set()
        writer.stop()
        sealer.seals.close()
        store.close()
    lags, weights = [], []
    sizes = [size for size, _ in seals]
    previous = first_seq - 1
    for last_seq, committed in commits:
        covering = bisect_left(sizes, last_seq + 1)
        lags.append(seals[covering][1] - committed)
        weights.append(last_seq - previous)
        previous = last_seq
    per_event = [lag for lag, weight in zip(lags, weights, strict=True) for _ in range(weight)]
    return {
        "lag_offered_per_s": rate,
        "lag_write_events_per_s": round(written / write_seconds),
        "lag_seal_interval_ms": round(interval * 1000),
        "lag_p50_ms": round(percentile(per_event, 0.50) * 1e3, 1),
        "lag_p95_ms": round(percentile(per_event, 0.95) * 1e3, 1),
        "lag_max_ms": round(max(per_event) * 1e3, 1),
        "lag_backlog_at_end_events": backlog,
    }
