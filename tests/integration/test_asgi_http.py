"""The HTTP handler uvicorn serves: the middleware chain is built sync and entered once, in a
request thread taken from a pool.

`config.asgi_http` explains why: Django's own ASGI handler runs each hook of each middleware
through its own thread hand-off. These tests drive the handler the way an ASGI server does.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from asgiref.sync import SyncToAsync

from config.asgi_http import SyncChainASGIHandler
from tests.support.asgi import exchange

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _get(handler: SyncChainASGIHandler, path: str) -> tuple[int, bytes]:
    return asyncio.run(_exchange(handler, path))


async def _exchange(handler: SyncChainASGIHandler, path: str) -> tuple[int, bytes]:
    status, _, body = await exchange(handler, "GET", path)
    return status, body


def test_the_middleware_chain_is_sync():
    handler = SyncChainASGIHandler()
    assert not asyncio.iscoroutinefunction(handler._middleware_chain)


def test_a_request_enters_sync_code_once(monkeypatch):
    handler = SyncChainASGIHandler()
    hand_offs: list[str] = []
    original = SyncToAsync.__call__

    async def recording(self, *args, **kwargs):
        hand_offs.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", recording)
    status, body = _get(handler, "/healthz")
    assert status == 200
    assert orjson.loads(body)["status"] == "ok"
    # Measured with Django's own handler: 14 hand-offs, one per middleware hook and the view's.
    # Here: the request-started signal's and one into the whole chain with the view.
    assert hand_offs.count("BaseHandler.get_response") == 1
    assert not [name for name in hand_offs if "Middleware" in name or name == "healthz"]
    assert len(hand_offs) <= 2, hand_offs


def test_requests_reuse_idle_threads_and_concurrent_ones_get_their_own(monkeypatch):
    handler = SyncChainASGIHandler()
    threads: list[int] = []
    together = threading.Barrier(2, timeout=10)
    concurrent = [False]
    original = handler.get_response

    def recording(request):
        threads.append(threading.get_ident())
        if concurrent[0]:
            together.wait()  # passes only if both requests run at once, in two threads
        return original(request)

    monkeypatch.setattr(handler, "get_response", recording)
    for _ in range(3):
        assert _get(handler, "/healthz")[0] == 200
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()

    concurrent[0] = True
    threads.clear()

    async def both() -> list:
        return await asyncio.gather(_exchange(handler, "/healthz"), _exchange(handler, "/healthz"))

    assert [status for status, _ in asyncio.run(both())] == [200, 200]
    assert len(set(threads)) == 2


def test_the_web_process_collects_on_the_throughput_schedule():
    """Loading the ASGI application sets ledger.interpreter's GC schedule (checked in a fresh
    interpreter, so this test process's own collector is left alone)."""
    probe = (
        "import gc, config.asgi; from ledger import interpreter; "
        "assert gc.get_threshold() == (interpreter.YOUNG_THRESHOLD, interpreter.MIDDLE_THRESHOLD, "
        "interpreter.OLD_THRESHOLD), gc.get_threshold(); import sys; "
        "assert sys.getswitchinterval() == 0.005, 'a web process without a writer keeps 5 ms'"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_web_process_imports_its_urlconf_before_the_first_request():
    probe = ("import sys, config.asgi; "
             "assert 'config.urls' in sys.modules and 'ledger.urls' in sys.modules")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
