"""The PostgreSQL baseline and LedgerFS over HTTP (distributed mode), back to back.

Runs `bench pg-baseline`, then `bench http-distributed`, with the same account count, length
and traffic shape (`--hot` for both), and reports both rates and LedgerFS's ratio to the
baseline measured in this run: `baseline_tps`, `ledgerfs_tps`, `ratio`.
"""

from __future__ import annotations

import argparse

from bench import distributed, pg_baseline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--hot", action="store_true", help="80%% of transfers on 10 accounts")
    parser.add_argument("--shards", type=int, default=1, choices=(1, 2))
    parser.add_argument("--server-url", default=None, help="PostgreSQL server URL")
    parser.add_argument("--seed", type=int, default=1)


def run(args: argparse.Namespace) -> dict:
    baseline = pg_baseline.run(_namespace(pg_baseline, args))
    ledgerfs = distributed.run(_namespace(distributed, args))
    return {
        "scenario": "compare", "hot": args.hot, "seconds": args.seconds,
        "accounts": args.accounts, "baseline_tps": baseline["tps"],
        "ledgerfs_tps": ledgerfs["tps"], "ratio": round(ledgerfs["tps"] / baseline["tps"], 2),
        "baseline": baseline, "ledgerfs": ledgerfs,
    }


def _namespace(module, args: argparse.Namespace) -> argparse.Namespace:
    """The module's own defaults, with the shared options taken from `args`."""
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    namespace = parser.parse_args([])
    for name, value in vars(args).items():
        if hasattr(namespace, name):
            setattr(namespace, name, value)
    return namespace
