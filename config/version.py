"""The LedgerFS version: installed package metadata, else pyproject.toml in a bare checkout."""

import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT_PATH = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _version_read() -> str:
    try:
        return metadata.version("ledgerfs")
    except metadata.PackageNotFoundError:
        with PYPROJECT_PATH.open("rb") as file:
            return tomllib.load(file)["project"]["version"]


VERSION = _version_read()
