"""The benchmark suite (`make bench`): every scenario in one invocation, results and report.

Each scenario runs in its own process (`python -m bench <scenario> --json`, its last line is
the result), one after another so they never compete with each other. Results go to
`bench/results/<name>.json`; `docs/benchmarks.md` gets its "Suite" section (between the
`suite:begin` / `suite:end` markers) rewritten with tables and PNG plots in `docs/img/`, each
with the command that reproduces it. The PostgreSQL baseline and LedgerFS over HTTP run back
to back for each traffic shape, and the ratio is taken between those two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "docs" / "benchmarks.md"
IMAGES = ROOT / "docs" / "img"
BEGIN = "<!-- suite:begin (written by `python -m bench suite`; edit bench/suite.py) -->"
END = "<!-- suite:end -->"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="load phase of the PostgreSQL and HTTP scenarios")
    parser.add_argument("--transfers", type=int, default=200_000,
                        help="transfers of the engine-direct scenarios")
    parser.add_argument("--only", action="append", help="run only these result names")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the report from bench/results/ without running")


def scenarios(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(result name, `python -m bench` arguments), in the order they run."""
    seconds = ["--seconds", str(args.seconds)]
    transfers = ["--transfers", str(args.transfers)]
    return [
        ("pg-uniform", ["pg-baseline", *seconds]),
        ("http-uniform", ["http-distributed", *seconds]),
        ("pg-hot", ["pg-baseline", "--hot", *seconds]),
        ("http-hot", ["http-distributed", "--hot", *seconds]),
        ("http-2-shards", ["http-distributed", "--shards", "2", *seconds]),
        ("engine-uniform", ["engine", *transfers]),
        ("engine-hot", ["engine", "--hot", *transfers]),
        ("engine-uuid", ["engine", "--uuid-keys", *transfers]),
        ("shards", ["shards", *transfers]),
        ("proofs", ["proofs"]),
        ("replay", ["replay"]),
    ]


OFFERED_SHARES = (50, 75)
"""Percentages of the saturated HTTP throughput (`http-uniform`) that the offered-load scenarios
send on a fixed schedule: the latency a write sees below saturation, where the saturated run's
back-to-back clients keep every queue full."""


def offered_scenarios(args: argparse.Namespace, saturated_tps: int) -> list[tuple[str, list[str]]]:
    """The offered-load scenarios for a saturated throughput of `saturated_tps` (uniform)."""
    return [
        (f"http-offered-{share}", ["http-distributed", "--rate",
                                   str(_offered_rate(saturated_tps, share)),
                                   "--seconds", str(args.seconds)])
        for share in OFFERED_SHARES
    ]


def _offered_rate(saturated_tps: int, share: int) -> int:
    """`share` percent of `saturated_tps`, rounded to a thousand transfers/s, at least 1,000."""
    return max(1_000, round(saturated_tps * share / 100_000) * 1_000)


def run(args: argparse.Namespace) -> dict:
    RESULTS.mkdir(parents=True, exist_ok=True)
    ran = {}
    if not args.report_only:
        for name, argv in scenarios(args):
            if not args.only or name in args.only:
                ran[name] = _run_one(name, argv)
        # Their rates follow from http-uniform: this run's, else the last recorded one.
        saturated = ran.get("http-uniform") or _load_results().get("http-uniform")
        for name, argv in offered_scenarios(args, saturated["tps"]) if saturated else []:
            if not args.only or name in args.only:
                ran[name] = _run_one(name, argv)
    results = _load_results()
    write_report(results, args)
    summary = {"scenario": "suite", "ran": sorted(ran), "report": str(REPORT.relative_to(ROOT))}
    for variant in ("uniform", "hot"):
        pg, http = results.get(f"pg-{variant}"), results.get(f"http-{variant}")
        if pg and http:
            summary[f"{variant}_baseline_tps"] = pg["tps"]
            summary[f"{variant}_ledgerfs_tps"] = http["tps"]
            summary[f"{variant}_ratio"] = round(http["tps"] / pg["tps"], 2)
    return summary


def _run_one(name: str, argv: list[str]) -> dict:
    command = [sys.executable, "-m", "bench", *argv, "--json"]
    print(f"[bench] {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    # Other processes on the machine distort every figure: wait until the previous scenario's
    # processes have finished their own work (PostgreSQL vacuuming, writers still projecting),
    # and record the load anyway. Measured: an engine run started at a 1-minute load of 5.5,
    # right after the HTTP scenarios, gave 95,600/s against 104,000-109,000 on a quiet machine.
    quiet_wait = _wait_for_quiet()
    started = time.monotonic()
    load_before = round(os.getloadavg()[0], 2)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["command"] = "python -m bench " + " ".join(argv) + " --json"
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result["load_average_before"] = load_before
    result["quiet_wait_seconds"] = quiet_wait
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


QUIET_BUSY_FRACTION = 0.15
"""The machine counts as quiet when its cores are busy less than this share of a second..."""
QUIET_SECONDS = 3
"""...this many seconds in a row."""
QUIET_WAIT_MAX_SECONDS = 120


def _busy_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _wait_for_quiet() -> float:
    """Seconds waited until the machine was quiet (at most QUIET_WAIT_MAX_SECONDS)."""
    started = time.monotonic()
    quiet = 0
    busy, total = _busy_ticks()
    while quiet < QUIET_SECONDS and time.monotonic() - started < QUIET_WAIT_MAX_SECONDS:
        time.sleep(1)
        now_busy, now_total = _busy_ticks()
        share = (now_busy - busy) / max(now_total - total, 1)
        quiet = quiet + 1 if share < QUIET_BUSY_FRACTION else 0
        busy, total = now_busy, now_total
    return round(time.monotonic() - started, 1)


def _load_results() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}


# -- report ---------------------------------------------------------------------------------------

def write_report(results: dict[str, dict], args: argparse.Namespace) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    plots = _plots(results)
    section = "\n".join([BEGIN, *_section(results, plots), END])
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    REPORT.write_text(text)


def _cpu_section(results: dict[str, dict]) -> list[str]:
    """CPU microseconds per transfer by kind of process, over the load phase: steadier than
    the throughput on this machine, and it shows where the two cores went."""
    runs = [(variant, results.get(f"http-{variant}")) for variant in ("uniform", "hot")]
    runs = [(variant, run) for variant, run in runs if run and "cpu_us_per_transfer" in run]
    if not runs:
        return []
    names = sorted({name for _, run in runs for name in run["cpu_us_per_transfer"]} - {"total"})
    names.append("total")
    return [
        "### CPU per transfer under load (µs, LedgerFS over HTTP, distributed)",
        "",
        "| traffic | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
        *(f"| {variant} | "
          + " | ".join(str(run["cpu_us_per_transfer"].get(name, "-")) for name in names) + " |"
          for variant, run in runs),
        "",
        "From /proc over the load phase (`bench/cpu.py`): `client` is the benchmark's own "
        "processes (its load threads and the balance reader), `postgres` every PostgreSQL "
        "process.",
        "",
    ]


def _offered_section(results: dict[str, dict]) -> list[str]:
    """Latency at fixed offered rates below saturation, beside the saturated run."""
    saturated = results.get("http-uniform")
    runs = [results[name] for name in (f"http-offered-{share}" for share in OFFERED_SHARES)
            if name in results]
    if not saturated or not runs:
        return []
    rows = [(f"{run['offered_tps']:,}", run) for run in runs]
    rows.append(("as fast as answered", saturated))
    return [
        "### Latency at a fixed offered load (uniform, ms)",
        "",
        "The batch clients send on a schedule instead of back to back; a batch's latency counts "
        "from when it was due. The single-transfer client and the balance reader are the same "
        "as above.",
        "",
        "| offered transfers/s | achieved | batch of 1,000 p50 / p95 | single transfer p50 / "
        "p95 | balance read p50 / p95 |",
        "|---|---:|---:|---:|---:|",
        *(f"| {offered} | {run['tps']:,} | {run['p50_batch_ms']} / {run['p95_batch_ms']} | "
          f"{run['loaded_p50_ms']} / {run['loaded_p95_ms']} | "
          f"{run['balance_p50_ms']} / {run['balance_p95_ms']} |" for offered, run in rows),
        "",
        "Reproduce: " + ", ".join(f"`{run['command']}`" for run in runs) + ".",
        "",
    ]


def _uuid_keys_line(results: dict) -> list[str]:
    """The engine with random UUIDs as idempotency keys, beside the counter keys of the table:
    UUIDs are what many clients send, and they land anywhere in RocksDB's memtables."""
    keyed, counter = results.get("engine-uuid"), results.get("engine-uniform")
    if not keyed or not counter:
        return []
    return [f"Engine-direct, uniform, with a random UUID as each transfer's idempotency key "
            f"instead of `t-<n>` (`--uuid-keys`): {keyed['tps']:,} transfers/s, "
            f"{keyed['tps'] / counter['tps']:.0%} of the table's {counter['tps']:,}.", ""]


def _cmd(results: dict, name: str) -> str:
    return results[name]["command"] if name in results else "(not run)"


def _section(results: dict[str, dict], plots: dict[str, str]) -> list[str]:
    get = results.get
    lines = [
        "## Suite: LedgerFS against a PostgreSQL baseline",
        "",
        f"Measured by `make bench` (`python -m bench suite --json`) on this machine: "
        f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}; "
        "PostgreSQL and Redis local, every scenario durable (fsync on acknowledgement). The "
        "clients run on the same two cores as the servers. With one shard, the writer has a "
        "core of its own and every other process, the clients included, the remaining ones "
        "(`LEDGERFS_WRITER_CPUS`, config/cpus.py; so do the writer's RocksDB flush and "
        "compaction threads, at nice 10); with two shards nothing is pinned. "
        "Each scenario starts once the cores "
        "have been less than 15% busy for 3 s in a row (`quiet_wait_seconds`: how long that "
        "took). Raw results: `bench/results/` (`load_average_before`: the 1-minute load when "
        "a scenario started, which decays slowly and still counts the previous scenario).",
        "",
        "### Throughput, durable (transfers/s)",
        "",
        "| traffic | PostgreSQL baseline | LedgerFS over HTTP (distributed) | ratio | "
        "LedgerFS engine-direct |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant in ("uniform", "hot"):
        pg, http, engine = get(f"pg-{variant}"), get(f"http-{variant}"), get(f"engine-{variant}")
        ratio = f"{http['tps'] / pg['tps']:.2f}x" if pg and http else "-"
        lines.append(f"| {variant} | {_tps(pg)} | {_tps(http)} | {ratio} | {_tps(engine)} |")
    lines += ["", *_uuid_keys_line(results), "Reproduce: " + ", ".join(
        f"`{_cmd(results, n)}`" for n in (
            "pg-uniform", "http-uniform", "pg-hot", "http-hot", "engine-uniform", "engine-hot",
            "engine-uuid")) + "; both rates and their ratio in one run: "
        "`python -m bench compare --json` (add `--hot` for the hot-account variant).", ""]
    if "throughput" in plots:
        lines += [f"![throughput]({plots['throughput']})", ""]
    lines += [
        "### Latency under load (ms)",
        "",
        "| traffic | batch of 1,000 p50 / p95 | single transfer p50 / p95 | balance read "
        "p50 / p95 |",
        "|---|---:|---:|---:|",
    ]
    for variant in ("uniform", "hot"):
        http = get(f"http-{variant}")
        if http:
            lines.append(
                f"| {variant} | {http['p50_batch_ms']} / {http['p95_batch_ms']} | "
                f"{http['loaded_p50_ms']} / {http['loaded_p95_ms']} | "
                f"{http['balance_p50_ms']} / {http['balance_p95_ms']} |")
    uniform = get("http-uniform")
    if uniform:
        lines += [
            "",
            f"{uniform['writers']} clients post batches back to back; one client posts single "
            "transfers, one after another; balance reads are due at a fixed rate "
            f"({uniform.get('read_rate', '-')}/s) from a process of their own, each on a free "
            "connection, and a read's latency counts from when it was due "
            "(`bench/paced_reader.py`).",
        ]
    lines += ["", f"Reproduce: `{_cmd(results, 'http-uniform')}`.", ""]
    if "latency" in plots:
        lines += [f"![latency]({plots['latency']})", ""]
    lines += _offered_section(results)
    lines += _cpu_section(results)
    shards, two = get("shards"), get("http-2-shards")
    lines += ["### Shards: 1 vs 2", "", "| path | 1 shard | 2 shards | scaling |",
              "|---|---:|---:|---:|"]
    if shards:
        lines.append(f"| engine-direct, each writer in its own process | "
                     f"{shards['one_shard_tps']:,} | {shards['two_shards_tps']:,} | "
                     f"{shards['scaling']:.2f}x |")
    if two and get("http-uniform"):
        one = get("http-uniform")["tps"]
        lines.append(f"| HTTP, distributed (same web workers) | {one:,} | {two['tps']:,} | "
                     f"{two['tps'] / one:.2f}x |")
    lines += ["", f"Reproduce: `{_cmd(results, 'shards')}`, `{_cmd(results, 'http-2-shards')}`.",
              ""]
    if "shards" in plots:
        lines += [f"![shards]({plots['shards']})", ""]
    proofs = get("proofs")
    if proofs:
        lines += ["### Proof generation", "", "| measure | value |", "|---|---:|"]
        lines += [f"| {key} | {value} |" for key, value in sorted(proofs.items())
                  if key not in ("command", "scenario", "wall_seconds", "load_average_before",
                                 "quiet_wait_seconds")]
        lines += ["", f"Reproduce: `{_cmd(results, 'proofs')}`.", ""]
    lines += _replay(results)
    lines += _goals(results)
    return lines


def _replay(results: dict[str, dict]) -> list[str]:
    replay = results.get("replay")
    if not replay:
        return []
    events = f"{replay['events']:,}"
    rows = [
        ("full replay from seq 0, hash chain verified (`ledger.replay.replay`)", events,
         replay["replay_seconds"], f"{replay['replay_events_per_s']:,}"),
        ("replay + comparison with the live and the stored state (`compare_states`)", events,
         replay["replay_verified_seconds"], f"{replay['replay_verified_events_per_s']:,}"),
        (f"writer start-up: open the store + `Writer.recover()` (load "
         f"{replay['recover_accounts']:,} accounts, re-hash the last "
         f"{replay['recover_tail_events']:,} events)", "-",
         round(replay["open_seconds"] + replay["recover_seconds"], 3), "-"),
    ]
    if "projector_seconds" in replay:
        rows.append((f"read-model rebuild from seq 0 (`ledger.projector.rebuild`, "
                     f"{replay['projector_database']})", f"{replay['projector_events']:,}",
                     replay["projector_seconds"], f"{replay['projector_events_per_s']:,}"))
    checks = [name for name in ("recover", "replay_live", "replay_stored", "projector")
              if f"{name}_differences" in replay]
    different = sum(replay[f"{name}_differences"] for name in checks)
    verdict = ("all equal" if different == 0
               else f"**{different} differences**: {'; '.join(replay['differences'])}")
    return [
        "### Replay",
        "",
        f"A log of {replay['transfers']:,} transfers among {replay['accounts']:,} accounts "
        f"({events} events) written by the writer to a fresh RocksDB shard, then rebuilt; "
        f"1-minute load when it started: {replay.get('load_average_before', '?')}.",
        "",
        "| measure | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        *(f"| {what} | {count} | {seconds} | {rate} |" for what, count, seconds, rate in rows),
        "",
        f"Recovered, replayed, stored and projected states compared: {verdict}. "
        f"Reproduce: `{_cmd(results, 'replay')}`.",
        "",
    ]


def _goals(results: dict[str, dict]) -> list[str]:
    get = results.get
    rows = []
    for variant in ("uniform", "hot"):
        pg, http = get(f"pg-{variant}"), get(f"http-{variant}")
        if pg and http:
            ratio = http["tps"] / pg["tps"]
            rows.append(f"| HTTP >= 5x baseline ({variant}) | {ratio:.2f}x | "
                        f"{'met' if ratio >= 5 else 'NOT met'} |")
            rows.append(f"| HTTP >= 50,000 transfers/s ({variant}) | {http['tps']:,} | "
                        f"{'met' if http['tps'] >= 50_000 else 'NOT met'} |")
    http = get("http-uniform")
    if http:
        rows.append(f"| write p95 < 100 ms under load | {http['loaded_p95_ms']} ms | "
                    f"{'met' if http['loaded_p95_ms'] < 100 else 'NOT met'} |")
        rows.append(f"| balance read p95 < 50 ms under load | {http['balance_p95_ms']} ms | "
                    f"{'met' if http['balance_p95_ms'] < 50 else 'NOT met'} |")
    for share in OFFERED_SHARES:
        offered = get(f"http-offered-{share}")
        if offered:
            rows.append(f"| write p95 < 100 ms at {offered['offered_tps']:,} transfers/s offered "
                        f"({share}% of saturation) | {offered['loaded_p95_ms']} ms | "
                        f"{'met' if offered['loaded_p95_ms'] < 100 else 'NOT met'} |")
    uniform, hot = get("engine-uniform"), get("engine-hot")
    if uniform:
        rows.append(f"| engine >= 100,000 transfers/s (uniform, one writer) | "
                    f"{uniform['tps']:,} | {'met' if uniform['tps'] >= 100_000 else 'NOT met'} |")
    if uniform and hot:
        rows.append(f"| engine hot no worse than uniform | {hot['tps']:,} vs {uniform['tps']:,} | "
                    f"{'met' if hot['tps'] >= uniform['tps'] else 'NOT met'} |")
    if get("shards"):
        scaling = get("shards")["scaling"]
        rows.append(f"| 2 shards >= 1.6x one (engine, own processes) | {scaling:.2f}x | "
                    f"{'met' if scaling >= 1.6 else 'NOT met'} |")
    if not rows:
        return []
    return ["### Goals of the requirements, as measured", "", "| goal | measured | |",
            "|---|---:|---|", *rows, ""]


def _tps(result: dict | None) -> str:
    return f"{result['tps']:,}" if result else "-"


def _cores() -> int:
    return os.cpu_count() or 0


def _plots(results: dict[str, dict]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    get = results.get
    variants = [v for v in ("uniform", "hot") if get(f"pg-{v}") and get(f"http-{v}")]
    if variants:
        figure, axes = plt.subplots(figsize=(7, 3.5))
        width = 0.27
        series = [("PostgreSQL baseline", "pg"), ("LedgerFS HTTP", "http"),
                  ("LedgerFS engine", "engine")]
        for offset, (label, prefix) in enumerate(series):
            values = [(get(f"{prefix}-{v}") or {}).get("tps", 0) for v in variants]
            axes.bar([i + (offset - 1) * width for i in range(len(variants))], values, width,
                     label=label)
        axes.set_xticks(range(len(variants)), variants)
        axes.set_ylabel("transfers/s (durable)")
        axes.set_title("Throughput")
        axes.legend(loc="upper left")  # the engine's bars reach the top right
        axes.set_ylim(top=axes.get_ylim()[1] * 1.3)
        plots["throughput"] = _save(figure, "bench-throughput.png")
    if get("http-uniform"):
        figure, axes = plt.subplots(figsize=(7, 3.5))
        names = ["batch of 1,000", "single transfer", "balance read"]
        keys = [("p50_batch_ms", "p95_batch_ms"), ("loaded_p50_ms", "loaded_p95_ms"),
                ("balance_p50_ms", "balance_p95_ms")]
        for offset, variant in enumerate(v for v in ("uniform", "hot") if get(f"http-{v}")):
            http = get(f"http-{variant}")
            axes.bar([i + offset * 0.4 for i in range(3)], [http[k[1]] for k in keys], 0.4,
                     label=f"p95 {variant}")
        axes.set_xticks([i + 0.2 for i in range(3)], names)
        axes.set_ylabel("ms")
        axes.set_title("LedgerFS over HTTP, latency under load")
        axes.legend()
        plots["latency"] = _save(figure, "bench-latency.png")
    if get("shards"):
        shards = get("shards")
        figure, axes = plt.subplots(figsize=(5, 3.5))
        axes.bar(["1 shard", "2 shards"], [shards["one_shard_tps"], shards["two_shards_tps"]])
        axes.set_ylabel("transfers/s (engine-direct, durable)")
        axes.set_title(f"Shard scaling: {shards['scaling']:.2f}x")
        plots["shards"] = _save(figure, "bench-shards.png")
    return plots


def _save(figure, name: str) -> str:
    figure.tight_layout()
    figure.savefig(IMAGES / name, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    return f"img/{name}"
