"""One `REDIS_URL`, in the form each client of it reads.

redis-py (the bus, the balances, Channels) reads a Unix socket as `unix:///path?db=N`; kombu,
Celery's transport, does not know that scheme and reads the same socket as
`redis+socket:///path?virtual_host=N`. A Redis on the machine itself is best reached through
its socket: `python -m bench http-distributed` against the same redis-server by TCP and by
socket, three alternating pairs, gave balance read p95 9.2 / 11.7 / 13.9 ms against 8.0 / 8.0 /
7.7 and 9.4 / 8.1 / 9.3 µs of web CPU per transfer against 7.7 / 8.8 / 7.6.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit


def celery_broker_url(redis_url: str) -> str:
    """`redis_url` as Celery's broker URL: itself, except a `unix://` one."""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    query = [("virtual_host", value) if name == "db" else (name, value)
             for name, value in parse_qsl(parts.query, keep_blank_values=True)]
    return f"redis+socket://{parts.netloc}{parts.path}" + (f"?{urlencode(query)}" if query else "")
