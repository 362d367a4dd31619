"""Suite-wide set-up: every test run gets its own LEDGERFS_DATA_DIR, never ./var.

This module names the settings itself, not [tool.pytest.ini_options]: pytest-django loads those
before any conftest runs, which would be too late to redirect the data directory.
It runs before pytest-django sets Django up (in pytest_configure), so do not import models here.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.services import (  # noqa: F401  (fixtures: real Redis and PostgreSQL)
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
)

TESTS_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(tempfile.mkdtemp(prefix="ledgerfs-pytest-")).resolve()

os.environ["LEDGERFS_DATA_DIR"] = str(DATA_DIR)
# Tests project explicitly (ledger.projector.catch_up), so no thread races their transactions.
os.environ["LEDGERFS_PROJECTOR"] = "manual"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Markers applied from the directory a test lives in, so `-m "not e2e"` works without
# decorating every test.
DIRECTORY_MARKERS = ("integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Reading a setting loads config.settings now, with the environment set above;
    # pytest-django's own pytest_configure runs last and then calls django.setup().
    if Path(settings.LEDGERFS_DATA_DIR) != DATA_DIR:
        raise pytest.UsageError(
            "Django settings were loaded before tests/conftest.py could isolate "
            f"LEDGERFS_DATA_DIR (they point at {settings.LEDGERFS_DATA_DIR}). "
            "Unset DJANGO_SETTINGS_MODULE and do not pass --ds; the suite sets it itself."
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            directory = item.path.relative_to(TESTS_DIR).parts[0]
        except ValueError:
            continue
        if directory in DIRECTORY_MARKERS:
            item.add_marker(directory)


@pytest.fixture
def ledger_runtime(tmp_path, settings):
    """A fresh ledger runtime (shards, writers, bus) over a private data directory.

    The database is rolled back after each test, so the shards on disk must not outlive the
    test either; this gives every test its own and stops its writers afterwards.
    """
    from ledger import runtime

    runtime.shutdown()
    settings.LEDGERFS_DATA_DIR = tmp_path
    yield runtime.runtime()
    runtime.shutdown()
