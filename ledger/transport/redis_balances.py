"""Current account states in Redis, so a process that does not write a shard can answer a
balance read without catching its RocksDB secondary instance up with the writer.

Why: catching up replays the writer's WAL since the last catch-up, and under a load of 25,000
transfers/s one catch-up took 7-15 ms (measured with reads back to back, which then kept the
reading process busy). The writer process has every touched account's new state at hand when
a group is durable (each event carries the snapshots it wrote to the store's as-of index), so
its bus server writes them to one hash per ledger, before the replies of that group:

| field            | value                                                          |
|------------------|----------------------------------------------------------------|
| `<account id>`   | the account's snapshot after its last event (`machine.pack_snapshot`) |
| `HEAD_FIELD`     | the seq of the last event the hash includes                    |

Rules that keep the hash right:
- One HSET writes a batch's accounts and its head, so one HMGET of (account, head) sees the
  account as of that head. It names each account once, with the last snapshot the batch's
  events give it.
- Redis has answered the HSET before the replies of its groups are sent, so a client that has
  its answer reads its own writes (`RedisBusServer`).
- Every durable group is published (`Writer.durable_listeners`). Groups decided before a bus server
  attached to its writer (a restart) were not, so the server deletes the hash before it
  publishes anything; Redis losing its data empties it too. An account missing from the hash
  is read from the store.
"""

from __future__ import annotations

from ledger._projection import configure, hset
from ledger.core.machine import Event

configure(event=Event)

HEAD_FIELD = b"\x00head"
"""Cannot collide with an account id (ids are printable)."""


def hset_command(key: str, groups: list[list[Event]], head: int) -> bytes:
    """The HSET of each account's latest snapshot in `groups` (durable groups, in seq order)
    and of `head`, packed for the wire.

    Why packed here, and in C (`ledger/_projection.c`): a bulk group touches thousands of
    accounts. redis-py's `hset` walked its mapping and then every argument in Python; a
    generator over the snapshots feeding hiredis's packer was still most of the bus replier's
    CPU (the thread a lone payment's reply waits for, 13% of the writer process's under load);
    in C the packing takes 0.08 µs per transfer instead of 0.57.

    Each account once: Redis runs an HSET as one command, and every balance read waits while
    it does. Under `python -m bench http-distributed` an HSET took Redis 855 µs on average, and
    a group of 4,000 uniform transfers names about 30% of its accounts more than once (hot
    accounts far more)."""
    return hset(key.encode(), groups, HEAD_FIELD, head)
