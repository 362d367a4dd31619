"""uvicorn's HTTP protocol with TCP_NODELAY on every connection: `--http
config.uvicorn_http:NoDelayHTTPProtocol`, for uvicorn with `--workers N` (the Procfile's web).

With N > 1, uvicorn binds the listening socket itself and leaves its `proto` at 0; accepted
sockets inherit that, and asyncio turns TCP_NODELAY on only for sockets that report
IPPROTO_TCP. Nagle's algorithm then holds each response's last segment until the client's
delayed ACK, about 40 ms per request on a keep-alive connection (measured: 48 ms instead of
5 ms per API call; uvicorn issue #3149). A single worker (`make run`) is not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol


class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
