"""Schema-driven fuzzing of the ledger API: `schemathesis run` generates requests from the
served /api/v1/openapi.json (valid and invalid ones) and sends them to the real server process.

Must hold: no 5xx, every status code and content type is documented, every response body
matches its documented schema, no operation answers without valid credentials, and wrong
methods get 405. Bounded per operation so the suite stays fast.
The seed is fixed so a failure reproduces; set LEDGERFS_FUZZ_SEED to explore further.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import LiveServer

MAX_EXAMPLES = 30
TIMEOUT_SECONDS = 300
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "ignored_auth", "unsupported_method")


@pytest.fixture(scope="module")
def server(api_server: LiveServer) -> LiveServer:
    """Embedded, then distributed (conftest.py)."""
    return api_server


def _seed(server: LiveServer, key: str) -> None:
    """Something to find: a ledger with funded accounts, so not every request is a 404."""
    with server.client(key) as client:
        assert client.post("/api/v1/ledgers", json={"code": "EUR", "scale": 2}).is_success
        ids = [client.post("/api/v1/accounts", json={"ledger": "EUR", "did": did}).json()["id"]
               for did in ("did:ex:a", "did:ex:b")]
        client.post("/api/v1/transfers", json={"transfers": [
            {"type": "mint", "account": ids[0], "amount": 10**6, "idempotency_key": "seed"}]})


def test_the_api_honours_its_schema(server: LiveServer, tmp_path: Path) -> None:
    key = server.api_key("fuzzer", "read,write,admin")
    _seed(server, key)
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"{server.url}/api/v1/openapi.json", "--url", server.url,
        "--checks", ",".join(CHECKS), "--max-examples", str(MAX_EXAMPLES),
        "--phases", "examples,coverage,fuzzing",
        "--header", f"Authorization: Bearer {key}",
        "--seed", os.environ.get("LEDGERFS_FUZZ_SEED", "20240101"),
        "--generation-database", "none", "--request-timeout", "30", "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    # In tmp_path: schemathesis keeps a crash cache in ./.schemathesis.
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                          cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "Internal Server Error" not in server.log()
