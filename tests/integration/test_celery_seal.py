"""Sealing through real Celery processes: `celery -A config beat` sends the seal task every
second through Redis, `celery -A config worker` runs it against a writer in another process.

Redis is REDIS_URL when set (CI), else a private `redis-server` on a free port (the binary is
in requirements-apt.txt). Every Celery key gets a per-run prefix, so a shared Redis is safe.
The writer runs in this test process (RocksDB primary); the worker follows it as a secondary
instance, seals into its own seal store, records the read models in the (migrated) SQLite
database of the data directory and writes the digests.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import Writer
from proofs.core.checkpoint import open_checkpoint
from proofs.core.note import verifier_key
from tests.support.processes import free_port

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CELERY = [sys.executable, "-m", "celery", "-A", "config"]
WAIT_SECONDS = 30


def _ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _private_redis(directory: Path, listen: list[str], url: str) -> Iterator[str]:
    """A redis-server of this module's own, listening as `listen` says, reached at `url`."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("REDIS_URL is unset and redis-server is not installed (make install)")
    server = subprocess.Popen(
        [binary, *listen, "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait(lambda: _ping(url), "redis-server to answer")
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    port = free_port()
    yield from _private_redis(tmp_path_factory.mktemp("redis"),
                              ["--port", str(port), "--bind", "127.0.0.1"],
                              f"redis://127.0.0.1:{port}/0")


def _wait(condition, what: str, processes: tuple = ()):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for process, log in processes:
            if process.poll() is not None:
                pytest.fail(f"{process.args[4]} exited:\n{log.read_text()}")
        time.sleep(0.1)
    logs = "\n".join(f"--- {log}\n{log.read_text()}" for _, log in processes)
    pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}\n{logs}")


def _latest_digest(directory: Path) -> tuple[int, str] | None:
    heights = [int(p.stem) for p in directory.glob("*.checkpoint")] if directory.is_dir() else []
    if not heights:
        return None
    height = max(heights)
    return height, (directory / f"{height}.checkpoint").read_text()


@pytest.fixture(scope="module")
def redis_socket_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server reached through its Unix socket only."""
    directory = tmp_path_factory.mktemp("redis-socket")
    socket = directory / "redis.sock"
    yield from _private_redis(
        directory, ["--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700"],
        f"unix://{socket}?db=0")


def test_beat_and_worker_seal_every_second_through_redis(redis_url, tmp_path):
    _seal_every_second(redis_url, tmp_path)


def test_beat_and_worker_reach_redis_through_its_unix_socket(redis_socket_url, tmp_path):
    """`REDIS_URL=unix://...`: Celery is given the socket in kombu's own form
    (config/redis_urls.py), the bus and the balances in redis-py's."""
    _seal_every_second(redis_socket_url, tmp_path)


def _seal_every_second(redis_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFS_", "DJANGO_"))}
    env.update(
        LEDGERFS_DATA_DIR=str(data), REDIS_URL=redis_url, DJANGO_SETTINGS_MODULE="config.settings",
        LEDGERFS_REDIS_KEY_PREFIX=f"ledgerfs-test-{uuid.uuid4().hex}:",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPOSITORY_ROOT,
                   env=env, check=True, capture_output=True, timeout=120)

    store = RocksEventStore(data / "shards" / "EUR", "EUR")
    writer = Writer(store).start()
    processes = []
    try:
        for name, arguments in (
            ("worker", ["worker", "-Q", "sealing,celery", "--pool", "solo",
                        "--without-gossip", "--without-mingle", "--without-heartbeat"]),
            ("beat", ["beat"]),
        ):
            log = tmp_path / f"{name}.log"
            process = subprocess.Popen(
                [*CELERY, *arguments, "--loglevel", "INFO"], cwd=REPOSITORY_ROOT, env=env,
                stdout=log.open("w"), stderr=subprocess.STDOUT,
            )
            processes.append((process, log))

        digests = data / "digests" / "EUR"
        key_file = data / "keys" / "EUR.key"
        for batch in range(2):
            dids = [f"did:test:{batch}:{i}" for i in range(3)]
            writer.execute(Request([Command("open_account", f"o-{d}", did=d) for d in dids]))
            writer.execute(Request([
                Command("mint", f"m-{d}", account=account_id_for("EUR", d), amount=1_000)
                for d in dids
            ]))
            size = store.head()[0] + 1
            _wait(lambda size=size: (latest := _latest_digest(digests))
                  and f"\n{size}\n" in latest[1], f"a digest of tree size {size}", processes)

        height, note = _latest_digest(digests)
        signer = key_file.read_text().strip()
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        checkpoint = open_checkpoint(note, _verifier(signer))
        assert checkpoint.tree_size == store.head()[0] + 1
        assert checkpoint.state_sum == 6_000
        with sqlite3.connect(data / "ledgerfs.sqlite3") as database:
            recorded = database.execute(
                "SELECT max(height), count(*) FROM attestation_checkpoint WHERE ledger = 'EUR'"
            ).fetchone()
        assert recorded == (height, height)
        worker_log = processes[0][1].read_text()
        assert "attestation.seal_ledgers" in worker_log and "succeeded" in worker_log
        assert "Sending due task seal-ledgers" in processes[1][1].read_text()
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        writer.stop()
        store.close()


def _verifier(signer: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from proofs.core.encoding import decode_base64

    _, _, name, _, seed = signer.split("+", 4)
    public = Ed25519PrivateKey.from_private_bytes(decode_base64(seed)[1:]).public_key()
    return verifier_key(name, public.public_bytes(Encoding.Raw, PublicFormat.Raw))
