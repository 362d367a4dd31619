"""A live LedgerFS server for the HTTP API tests: `make run`'s process (uvicorn, one worker,
background projector) on a free port over its own data directory, plus API keys made with
`manage.py apikey`. Each test module starts its own (a few seconds) with `live_server`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import free_port

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    env: dict[str, str]

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPOSITORY_ROOT,
                              env=self.env, check=True, capture_output=True, text=True)
        return done.stdout

    def api_key(self, name: str, scopes: str, *, user: str | None = None) -> str:
        args = ["apikey", "create", "--name", name, "--scopes", scopes]
        if user is not None:
            args += ["--user", user]
        return self.manage(*args).splitlines()[-1]

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text()


def live_server(data_dir: Path) -> Iterator[LiveServer]:
    """Migrate, start, wait until it answers; yield; stop. For module-scoped fixtures."""
    env = {**os.environ, "LEDGERFS_DATA_DIR": str(data_dir), "LEDGERFS_PROJECTOR": "thread"}
    server = LiveServer("", data_dir, env)
    server.manage("migrate", "--noinput")
    port = free_port()
    server.url = f"http://127.0.0.1:{port}"
    with (data_dir / "server.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=REPOSITORY_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
            try:
                httpx.get(f"{server.url}/robots.txt", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not serving:\n{server.log()}") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
