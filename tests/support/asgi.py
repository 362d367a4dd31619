"""One HTTP exchange with an ASGI application, driven as an ASGI server drives it."""

from __future__ import annotations

from asgiref.testing import ApplicationCommunicator


async def exchange(app, method: str, path: str, *, query: bytes = b"", body: bytes = b"",
                   headers: list[tuple[bytes, bytes]] | None = None, chunks: int = 1
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of one request; its body arrives in `chunks` messages."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
        "root_path": "", "headers": headers or [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(app, scope)
    size = -(-len(body) // chunks) if body else 1
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    for number, part in enumerate(parts):
        await communicator.send_input({"type": "http.request", "body": part,
                                       "more_body": number < len(parts) - 1})
    start = await communicator.receive_output(10)
    data = b""
    while True:
        message = await communicator.receive_output(10)
        data += message.get("body", b"")
        if not message.get("more_body"):
            return start["status"], start["headers"], data
