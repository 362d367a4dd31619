"""A writer process for the crash-safety test: streams batches, prints each acknowledgement.

Run as `python crash_writer.py <shard path>`. It opens (or recovers) the shard, then submits
batches of transfers forever, and after each batch is acknowledged prints one line per command
of it: `ACK <idempotency key> <seq>`. The test kills it with SIGKILL at a random moment.
"""

import sys
from pathlib import Path

from ledger.core.commands import Command, Request
from ledger.core.state import account_id_for
from ledger.eventstore.rocks import RocksEventStore
from ledger.writer import Writer

LEDGER = "EUR"
ACCOUNTS = 50
BATCH = 200
IN_FLIGHT = 3


def account(number: int) -> str:
    return account_id_for(LEDGER, f"did:crash:{number % ACCOUNTS}")


def command_for(key: str) -> Command:
    """The transfer sent under idempotency key `b<batch>-<i>` (deterministic, for repeats)."""
    batch_number, i = (int(part) for part in key[1:].split("-"))
    return Command("transfer", key, account=account(i),
                   to=account(i * 7 + batch_number + 1), amount=1)


def main(path: Path) -> None:
    writer = Writer(RocksEventStore(path, LEDGER)).start()
    dids = [f"did:crash:{i}" for i in range(ACCOUNTS)]
    writer.execute(Request(
        [Command("open_account", f"open-{did}", did=did) for did in dids]
        + [Command("mint", f"mint-{i}", account=account(i), amount=10**9)
           for i in range(ACCOUNTS)]
    ))
    print("READY", flush=True)
    pending = []
    batch_number = 0
    while True:
        commands = [command_for(f"b{batch_number}-{i}") for i in range(BATCH)]
        commands = [c for c in commands if c.account != c.to]
        pending.append((commands, writer.submit(Request(commands))))
        batch_number += 1
        if len(pending) >= IN_FLIGHT:
            sent, future = pending.pop(0)
            results = future.result(30)
            lines = [f"ACK {c.idempotency_key} {r.seq}" for c, r in zip(sent, results, strict=True)
                     if r.ok]
            print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
