"""A running LedgerFS for the tests that drive it from outside (HTTP, WebSocket, a browser,
curl), on a free port over its own data directory, in either mode:

- `embedded`: `make run`'s process: one uvicorn process hosting the writers (threads), the
  background projector and the monitor, over SQLite. `redis=True` adds a private Redis
  (channels_redis, a real Celery broker), as the webhook tests need.
- `distributed`: `make up`'s processes: a fresh PostgreSQL database, a private Redis,
  `manage.py ledger_writers` (one `ledger_writer` process per ledger, started as soon as the
  ledger is registered, through the API too), uvicorn with two workers, and one Celery worker
  that also runs beat (`-B`: sealing every second, as `make up`'s sealer and beat do).
  No `manage.py monitor`: nothing the API answers depends on it.

`tests/e2e/conftest.py` runs the API suites against both (fixture `api_server`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.services import (
    ROOT,
    START_TIMEOUT_SECONDS,
    RedisServer,
    WebProcess,
    database_create,
    database_drop,
    manage,
    service_env,
    wait_for,
)

MODES = ("embedded", "distributed")


class LiveServer:
    """One server: `start()` (or `with`) brings every process up and waits until it answers;
    `stop()` takes everything down again, database and Redis included."""

    def __init__(self, directory: Path, mode: str = "embedded", *, redis: bool = False,
                 postgres_server: str | None = None, **settings: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if mode == "distributed" and postgres_server is None:
            raise ValueError("the distributed mode needs postgres_server (the fixture's URL)")
        self.directory = directory
        self.mode = mode
        self.data_dir = directory / "data"
        self.postgres_server = postgres_server
        self.settings = {"LEDGERFS_LOG_LEVEL": "WARNING", **settings}
        self.redis = (RedisServer(directory) if redis or mode == "distributed" else None)
        self.database: str | None = None
        self.env: dict[str, str] = {}
        self.web: WebProcess | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        """The other processes of the distributed mode, by name (their log: `<name>.log`)."""
        self.url = self.ws_url = ""

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> LiveServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.redis is not None:
            self.redis.start()
        redis_url = self.redis.url if self.redis is not None else None
        if self.mode == "distributed":
            # Migrating first also generates the data directory's secret key, before the
            # processes that share it start.
            self.database = database_create(self.postgres_server, self.data_dir)
            self.env = service_env(self.database, redis_url, self.data_dir, **self.settings)
            self._spawn("writers", sys.executable, str(ROOT / "manage.py"), "ledger_writers")
            self._spawn("celery", sys.executable, "-m", "celery", "-A", "config", "worker", "-B",
                        "-Q", "celery,sealing", "--pool", "solo", "--without-gossip",
                        "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING")
        else:
            self.env = service_env(None, redis_url, self.data_dir, LEDGERFS_PROJECTOR="thread",
                                   LEDGERFS_MONITOR="thread", **self.settings)
            self.manage("migrate", "--noinput")
        # The access log stays on: tests look for "Internal Server Error" in it.
        workers = 2 if self.mode == "distributed" else 1
        self.web = WebProcess(self.env, self.directory / "web.log", workers, access_log=True)
        self.web.start()
        self.url = f"http://127.0.0.1:{self.web.port}"
        self.ws_url = f"ws://127.0.0.1:{self.web.port}"

        def serving() -> bool:
            for process in (self.web.process, *self.processes.values()):
                if process.poll() is not None:
                    pytest.fail(f"a {self.mode} server process exited:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(serving, START_TIMEOUT_SECONDS, f"the {self.mode} server")

    def _spawn(self, name: str, *command: str) -> None:
        with (self.directory / f"{name}.log").open("a") as log:
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        # SIGTERM to all, then wait: `ledger_writers` stops its writers first.
        running = [p for p in self.processes.values() if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.processes.clear()
        if self.redis is not None:
            self.redis.kill()
        if self.database is not None:
            database_drop(self.postgres_server, self.database)
            self.database = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def log(self) -> str:
        """Every process's output (web, and in distributed mode writers and Celery)."""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}"
                         for path in sorted(self.directory.glob("*.log")))

    # -- operating it ------------------------------------------------------------------------

    def manage(self, *args: str, env: dict | None = None) -> str:
        return manage(*args, env={**self.env, **(env or {})}, timeout=120).stdout

    def api_key(self, name: str, scopes: str = "read,write,admin",
                user: str | None = None) -> str:
        """A new key of a new client (acting as `user`, else as its own service user)."""
        args = ["--user", user] if user else []
        return self.manage("apikey", "create", "--name", name, "--scopes", scopes, *args) \
            .strip().splitlines()[-1]

    def superuser(self, username: str, password: str) -> None:
        self.manage("createsuperuser", "--noinput", "--username", username, "--email",
                    f"{username}@example.com", env={"DJANGO_SUPERUSER_PASSWORD": password})

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def api(self, key: str) -> Api:
        return Api(self.url, key)


class Api:
    """The ledger and ops APIs with one API key."""

    def __init__(self, base_url: str, key: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30,
                                   headers={"Authorization": f"Bearer {key}"})

    def commands(self, ledger: str, items: list[dict]) -> list[dict]:
        reply = self.client.post("/api/v1/transfers", json={"ledger": ledger,
                                                            "transfers": items})
        assert reply.status_code == 200, reply.text
        results = reply.json()["results"]
        assert all(r["status"] == "ok" for r in results), results
        return results

    def ledger(self, code: str, scale: int = 2) -> None:
        reply = self.client.post("/api/v1/ledgers", json={"code": code, "scale": scale})
        assert reply.status_code in (200, 201), reply.text

    def open_accounts(self, ledger: str, dids: list[str]) -> list[str]:
        results = self.commands(ledger, [
            {"type": "open_account", "did": did, "idempotency_key": f"open-{did}"}
            for did in dids])
        return [r["event"]["details"]["account"] for r in results]

    def close(self) -> None:
        self.client.close()
