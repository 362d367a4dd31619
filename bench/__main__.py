"""Command line of the benchmark harness: one sub-command per scenario."""

import argparse
import json
import sys

from bench import (
    compare,
    distributed,
    engine,
    http,
    pg_baseline,
    proofs,
    replay,
    shards,
    streaming,
    suite,
)

SCENARIOS = {
    "engine": engine, "http": http, "proofs": proofs, "pg-baseline": pg_baseline,
    "http-distributed": distributed, "shards": shards, "compare": compare, "suite": suite,
    "streaming": streaming, "replay": replay,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="scenario", required=True)
    for name, module in SCENARIOS.items():
        scenario = sub.add_parser(name, help=module.__doc__.splitlines()[0])
        module.add_arguments(scenario)
        scenario.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    result = SCENARIOS[args.scenario].run(args)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
