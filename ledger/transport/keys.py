"""Every Redis key the ledger transports use, in one place (all under `ledgerfs:`).

| key                        | type   | written by      | holds                                  |
|----------------------------|--------|-----------------|----------------------------------------|
| ledgerfs:bus:<CODE>        | stream | web (XADD)      | requests to the writer of CODE         |
| ledgerfs:reply:<client id> | list   | writer (LPUSH)  | replies to one bus client (a process)  |
| ledgerfs:writer:<CODE>     | string | writer (SET PX) | heartbeat: the writer's pid, expires   |
| ledgerfs:head:<CODE>       | string | writer (SET)    | last seq acknowledged to any client    |
| ledgerfs:events:<CODE>     | stream | writer (XADD)   | committed events, ids `<last seq>-1`   |
| ledgerfs:balances:<CODE>   | hash   | writer (HSET)   | current account states (redis_balances)|
"""

PREFIX = "ledgerfs"
BUS_GROUP = "writers"
"""The consumer group of a bus stream; its one consumer is the shard's writer."""
BUS_CONSUMER = "writer"


def bus(ledger: str) -> str:
    return f"{PREFIX}:bus:{ledger}"


def reply(client_id: str) -> str:
    return f"{PREFIX}:reply:{client_id}"


def writer_heartbeat(ledger: str) -> str:
    return f"{PREFIX}:writer:{ledger}"


def head(ledger: str) -> str:
    return f"{PREFIX}:head:{ledger}"


def events(ledger: str) -> str:
    return f"{PREFIX}:events:{ledger}"


def balances(ledger: str) -> str:
    return f"{PREFIX}:balances:{ledger}"
