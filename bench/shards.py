"""Shard scaling, engine-direct: 1 shard vs 2 shards, each writer in its own process fed
directly (no HTTP, no bus), durable group commit.

Runs `bench engine` once in one process, then twice at the same time in two processes on two
shards, and reports the single rate, the combined rate (transfers of both / the longer run)
and their ratio. On a 2-core machine the ceiling is 2.0.
"""

from __future__ import annotations

import argparse
import multiprocessing

from bench import engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    engine.add_arguments(parser)


def _engine(args: argparse.Namespace, out: multiprocessing.Queue) -> None:
    out.put(engine.run(args))


def _together(args: argparse.Namespace, count: int) -> list[dict]:
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()
    processes = [context.Process(target=_engine, args=(args, out)) for _ in range(count)]
    for process in processes:
        process.start()
    results = [out.get(timeout=900) for _ in processes]
    for process in processes:
        process.join(60)
    return results


def run(args: argparse.Namespace) -> dict:
    [one] = _together(args, 1)
    two = _together(args, 2)
    combined = round(sum(r["transfers"] for r in two) / max(r["seconds"] for r in two))
    return {
        "scenario": "shards", "hot": args.hot, "durable": not args.no_sync,
        "transfers_per_shard": args.transfers, "one_shard_tps": one["tps"],
        "two_shards_tps": combined, "per_shard_tps": [r["tps"] for r in two],
        "scaling": round(combined / one["tps"], 2),
    }
