"""The web process as `make run` starts it: uvicorn, ASGI, WhiteNoise, no collectstatic."""

import urllib.request
from email.message import Message


def fetch(url: str) -> tuple[int, Message, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers, response.read()


def test_operator_console_login_is_served(server_url: str) -> None:
    status, _, body = fetch(f"{server_url}/admin/login/")
    assert status == 200
    assert b"LedgerFS operator console" in body


def test_static_files_are_served_without_collectstatic(server_url: str) -> None:
    status, headers, body = fetch(f"{server_url}/static/ledgerfs.css")
    assert status == 200
    assert headers["Content-Type"].startswith("text/css")
    assert b"--ledgerfs-ink" in body
    status, _, _ = fetch(f"{server_url}/static/admin/css/base.css")
    assert status == 200
