"""LedgerFS benchmarks: `python -m bench <scenario> [--json]`.

Every scenario prints a human-readable summary, or with `--json` one JSON object as its last
line, so runs can be collected by scripts and compared.
"""
