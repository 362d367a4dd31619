"""Real services for the distributed-mode tests: a private Redis, a PostgreSQL database, and
LedgerFS processes (writers, web) started as subprocesses.

- Redis: a private `redis-server` on a free port (no persistence), so a test may kill and
  restart it without touching anybody else's Redis. The binary is a Debian package listed in
  requirements-apt.txt; without it the tests fail, they are not skipped.
- PostgreSQL: the server named by DATABASE_URL, else the one on 127.0.0.1:5432, else a
  throwaway cluster made with initdb/pg_ctl. Each test module gets its own fresh database.

`tests/conftest.py` makes the fixtures available to every test; the process helpers are
imported from `tests.support.services`. `tests.support.servers` starts whole servers (embedded
or distributed) from these pieces.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from glob import glob
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis

from tests.support.processes import free_port, terminate, wait_for

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


# -- Redis ----------------------------------------------------------------------------------------

class RedisServer:
    """A private redis-server; `restart()` kills it (SIGKILL) and starts it again, empty."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (it is in requirements-apt.txt: "
                        "`make install` installs it)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self._pings(), START_TIMEOUT_SECONDS, "redis-server")

    def _pings(self) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def restart(self, down_seconds: float = 0.0) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The private Redis, emptied for this test (and started again if a test killed it)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


# -- PostgreSQL -----------------------------------------------------------------------------------

def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class ThrowawayCluster:
    """initdb + pg_ctl in a temporary directory, trust auth, on a free port."""

    def __init__(self, directory: Path) -> None:
        initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        if not (initdb and pg_ctl):
            pytest.fail("PostgreSQL is neither running nor installed (postgresql is in "
                        "requirements-apt.txt); or set DATABASE_URL")
        self.pg_ctl = pg_ctl
        self.directory = directory
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            directory.chmod(0o777)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self.prefix, initdb, "-D", str(directory / "data"), "-A", "trust",
                        "-U", "postgres"], check=True, capture_output=True)
        subprocess.run(
            [*self.prefix, pg_ctl, "-D", str(directory / "data"), "-w", "-l",
             str(directory / "log"), "-o", f"-p {self.port} -k {directory} -h 127.0.0.1",
             "start"], check=True, capture_output=True,
        )
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.directory / "data"), "-m",
                        "immediate", "stop"], capture_output=True)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        yield url
    elif listening("127.0.0.1", 5432):
        yield "postgres://postgres@127.0.0.1:5432/postgres"
    else:
        cluster = ThrowawayCluster(tmp_path_factory.mktemp("postgres"))
        yield cluster.url
        cluster.stop()


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_create(server_url: str, data_dir: Path) -> str:
    """A new database on the server, migrated; its URL. `database_drop` removes it."""
    name = f"ledgerfs_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = database_url(server_url, name)
    try:
        manage("migrate", "--noinput", env=service_env(url, None, data_dir), timeout=120)
    except BaseException:
        database_drop(server_url, url)
        raise
    return url


def database_drop(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def postgres_url(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database for each test module, migrated, dropped at the end: modules create
    the same ledgers, so they must not see each other's read models."""
    url = database_create(postgres_server, tmp_path_factory.mktemp("migrate"))
    yield url
    database_drop(postgres_server, url)


# -- LedgerFS processes ---------------------------------------------------------------------------

def service_env(database: str | None, redis_url: str | None, data_dir: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LEDGERFS_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="config.settings",
               LEDGERFS_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    if database:
        env["DATABASE_URL"] = database
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(*args: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


class WriterProcess:
    """`manage.py ledger_writer --ledger CODE [extra args]` as a subprocess, its output in a
    log file."""

    def __init__(self, ledger: str, env: dict, log_path: Path, *extra_args: str) -> None:
        self.ledger = ledger
        self.env = env
        self.log_path = log_path
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None

    def start(self, redis_client: redis.Redis | None = None) -> WriterProcess:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "ledger_writer", "--ledger", self.ledger,
             *self.extra_args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        if redis_client is not None:
            from ledger.transport import keys

            def alive() -> bool:
                if self.process.poll() is not None:
                    pytest.fail(f"writer exited:\n{self.log_path.read_text()}")
                try:
                    return bool(redis_client.exists(keys.writer_heartbeat(self.ledger)))
                except redis.RedisError:
                    return False

            wait_for(alive, START_TIMEOUT_SECONDS, f"the writer of {self.ledger}")
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        return None if self.process is None else terminate(self.process)


class WebProcess:
    """The web process on a free port: one uvicorn process as `make run` starts it (embedded
    mode), or several workers as the Procfile's `config.web_workers` (distributed mode)."""

    def __init__(self, env: dict, log_path: Path, workers: int = 2, *,
                 access_log: bool = False) -> None:
        self.env = env
        self.log_path = log_path
        self.workers = workers
        self.access_log = access_log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> WebProcess:
        log = self.log_path.open("a")
        address = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.workers == 1:
            command = ["uvicorn", "config.asgi:application", *address,
                       *([] if self.access_log else ["--no-access-log"])]
        else:
            command = ["config.web_workers", *address, "--workers", str(self.workers),
                       *(["--access-log"] if self.access_log else [])]
        self.process = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

        def serving() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"web exited:\n{self.log_path.read_text()}")
            return listening("127.0.0.1", self.port)

        wait_for(serving, START_TIMEOUT_SECONDS, "the web process")
        return self

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process)


class Api:
    """A tiny HTTP client of the ledger API (a new connection per call, so successive calls
    land on different uvicorn workers)."""

    def __init__(self, port: int, key: str) -> None:
        import httpx

        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {key}"}, timeout=60,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def post(self, path: str, payload: dict):
        return self.client.post(path, json=payload)

    def get(self, path: str, **params):
        return self.client.get(path, params=params)

    def transfers(self, ledger: str, items: list[dict], atomic: bool = False) -> list[dict]:
        reply = self.post("/transfers", {"ledger": ledger, "transfers": items, "atomic": atomic})
        assert reply.status_code == 200, reply.text
        return reply.json()["results"]

    def close(self) -> None:
        self.client.close()


def api_key_create(env: dict) -> str:
    done = manage("apikey", "create", "--name", f"t-{uuid.uuid4().hex[:8]}", "--scopes",
                  "read,write,admin", env=env)
    return done.stdout.strip().splitlines()[-1]
