"""A LedgerFS web process for the streaming tests, with its relay and monitor running.

The suite-wide `server_url` fixture serves with the monitor off (the test environment's manual
projector turns it off), so the WebSocket, dashboard and webhook tests start their own:
uvicorn in embedded mode, `LEDGERFS_MONITOR=thread`, a fresh data directory, optionally Redis
(channels_redis and a real Celery broker). Import it as `tests.e2e.live_server`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30


def redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


class PrivateRedis:
    """REDIS_URL when set, else a private redis-server on a free port."""

    def __init__(self, directory: Path) -> None:
        self.process = None
        self.url = os.environ.get("REDIS_URL", "")
        if self.url:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("REDIS_URL is unset and redis-server is not installed (make install)")
        port = free_port()
        self.process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: redis_ping(self.url), START_TIMEOUT_SECONDS, "redis-server")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class LiveServer:
    def __init__(self, directory: Path, **settings: str) -> None:
        self.directory = directory
        self.data_dir = directory / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("LEDGERFS_", "DJANGO_", "REDIS_URL", "DATABASE_URL"))}
        self.env.update(
            PYTHONPATH=str(ROOT), DJANGO_SETTINGS_MODULE="config.settings",
            LEDGERFS_DATA_DIR=str(self.data_dir), LEDGERFS_MONITOR="thread",
            LEDGERFS_PROJECTOR="thread", LEDGERFS_LOG_LEVEL="WARNING",
            LEDGERFS_REDIS_KEY_PREFIX=f"ledgerfs-test-{uuid.uuid4().hex[:12]}:",
            PYTHONUNBUFFERED="1", **settings,
        )
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str, env: dict | None = None) -> str:
        done = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args],
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            pytest.fail(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self) -> LiveServer:
        self.manage("migrate", "--noinput")
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host",
                 "127.0.0.1", "--port", str(self.port), "--no-access-log"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )

        def serving() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"server exited:\n{self.log_path.read_text()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(serving, START_TIMEOUT_SECONDS, "the server")
        return self

    def api_key(self, name: str, scopes: str = "read,write,admin",
                user: str | None = None) -> str:
        """A new key of a new client (acting as `user`, else as its own service user)."""
        args = ["--user", user] if user else []
        return self.manage("apikey", "create", "--name", name, "--scopes", scopes, *args) \
            .strip().splitlines()[-1]

    def superuser(self, username: str, password: str) -> None:
        self.manage("createsuperuser", "--noinput", "--username", username, "--email",
                    f"{username}@example.com", env={"DJANGO_SUPERUSER_PASSWORD": password})

    def api(self, key: str) -> Api:
        return Api(self.url, key)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


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
