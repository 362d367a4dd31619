"""The HTTP side of a delivery: POST a body to the checked address of a target.

Connections go to the address `targets.target_resolve` checked (the Host header and the TLS
server name stay the URL's host), are kept alive across the deliveries of one run, never follow
redirects (a 3xx is a failed attempt), and time out after `LEDGERFS_WEBHOOK_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from webhooks.targets import Target, TargetRefused, target_resolve

RESPONSE_READ_LIMIT = 64 * 1024


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout,
                         context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class Sender:
    """POSTs bodies; one instance per delivery run (it keeps targets and connections)."""

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        self._targets: dict[str, Target] = {}
        self._connections: dict[Target, http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        """(HTTP status, "") or (None, what went wrong); never raises for network trouble."""
        try:
            target = self._targets.get(url) or self._targets.setdefault(url, target_resolve(url))
        except TargetRefused as exc:
            return None, f"refused: {exc}"
        # A kept-alive connection the receiver closed while idle fails at once: one fresh try.
        tries = 2 if target in self._connections else 1
        for _ in range(tries):
            try:
                return self._post(target, body, headers), ""
            except (OSError, http.client.HTTPException) as exc:
                self._drop(target)
                error = f"{type(exc).__name__}: {exc}"[:500]
        return None, error

    def _post(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        connection = self._connections.get(target)
        if connection is None:
            kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
            connection = self._connections[target] = kind(target, self.timeout_seconds)
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(RESPONSE_READ_LIMIT)
        if not response.isclosed():
            self._drop(target)  # an oversized body: do not read on, do not reuse
        return response.status

    def _drop(self, target: Target) -> None:
        connection = self._connections.pop(target, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for target in list(self._connections):
            self._drop(target)
