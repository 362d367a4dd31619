"""The settings module evaluated against controlled environments, without restarting Django."""

import os
import runpy
import stat
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.redis_urls import celery_broker_url

SETTINGS_PATH = Path(__file__).resolve().parents[2] / "config" / "settings.py"
SETTINGS_VARIABLES = (
    "LEDGERFS_ENV",
    "LEDGERFS_DEMO",
    "LEDGERFS_LOG_LEVEL",
    "LEDGERFS_FAST_LANE",
    "DATABASE_URL",
    "REDIS_URL",
    "LEDGERFS_WRITER_CPUS",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_CSRF_TRUSTED_ORIGINS",
    "DJANGO_SECURE_COOKIES",
)


@pytest.fixture
def load_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGERFS_DATA_DIR", str(tmp_path / "data"))

    def load(**environment: str) -> dict[str, object]:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_PATH))

    return load


def test_suite_runs_in_its_own_data_directory() -> None:
    assert Path(settings.LEDGERFS_DATA_DIR) == Path(os.environ["LEDGERFS_DATA_DIR"])
    assert Path(settings.LEDGERFS_DATA_DIR) != Path(settings.BASE_DIR) / "var"


def test_embedded_defaults(load_settings, tmp_path: Path) -> None:
    loaded = load_settings()
    data_dir = tmp_path / "data"
    assert loaded["LEDGERFS_ENV"] == "embedded"
    assert loaded["LEDGERFS_DATA_DIR"] == data_dir
    assert data_dir.is_dir()
    assert loaded["DEBUG"] is False
    assert loaded["LEDGERFS_DEMO"] is True
    assert loaded["REDIS_URL"] is None
    assert loaded["SESSION_COOKIE_SECURE"] is loaded["CSRF_COOKIE_SECURE"] is False
    database = loaded["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.sqlite3"
    assert database["NAME"] == data_dir / "ledgerfs.sqlite3"
    assert database["OPTIONS"]["init_command"] == "PRAGMA journal_mode=WAL;"
    assert loaded["STATIC_ROOT"] == data_dir / "static"
    assert loaded["LEDGERFS_FAST_LANE"] is True


def test_generated_secret_key_is_private_and_stable(load_settings, tmp_path: Path) -> None:
    first = load_settings()
    key_file = tmp_path / "data" / "secret_key"
    assert first["LEDGERFS_SECRET_KEY_SOURCE"] == "data_dir"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first["SECRET_KEY"]) >= 50
    assert load_settings()["SECRET_KEY"] == first["SECRET_KEY"]
    assert not list(key_file.parent.glob(".secret_key.*")), "temporary key file left behind"


def test_secret_key_from_environment_writes_no_file(load_settings, tmp_path: Path) -> None:
    loaded = load_settings(DJANGO_SECRET_KEY="from-the-secret-store")
    assert loaded["SECRET_KEY"] == "from-the-secret-store"
    assert loaded["LEDGERFS_SECRET_KEY_SOURCE"] == "environment"
    assert not (tmp_path / "data" / "secret_key").exists()


def test_database_url_selects_postgresql(load_settings) -> None:
    loaded = load_settings(DATABASE_URL="postgres://ledger:pw@db.internal:5432/ledgerfs")
    database = loaded["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == (
        "db.internal",
        5432,
        "ledgerfs",
    )
    assert database["CONN_MAX_AGE"] == 60


def test_production_defaults_are_safe(load_settings) -> None:
    loaded = load_settings(LEDGERFS_ENV="production")
    assert loaded["LEDGERFS_DEMO"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is loaded["CSRF_COOKIE_SECURE"] is True


def test_lists_and_flags_from_environment(load_settings) -> None:
    loaded = load_settings(
        DJANGO_ALLOWED_HOSTS="ledger.example.com, admin.example.com",
        DJANGO_DEBUG="true",
        REDIS_URL="redis://cache:6379/0",
        LEDGERFS_FAST_LANE="0",
    )
    assert loaded["LEDGERFS_FAST_LANE"] is False
    assert loaded["ALLOWED_HOSTS"] == ["ledger.example.com", "admin.example.com"]
    assert loaded["DEBUG"] is True
    assert loaded["REDIS_URL"] == "redis://cache:6379/0"


@pytest.mark.parametrize(
    ("name", "value"),
    [("LEDGERFS_ENV", "staging"), ("DJANGO_DEBUG", "maybe"), ("LEDGERFS_LOG_LEVEL", "LOUD")],
)
def test_bad_values_stop_start_up(load_settings, name: str, value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        load_settings(**{name: value})


@pytest.mark.parametrize(("redis_url", "broker"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("unix:///run/redis/redis.sock?db=2", "redis+socket:///run/redis/redis.sock?virtual_host=2"),
    ("unix:///run/redis/redis.sock", "redis+socket:///run/redis/redis.sock"),
])
def test_celery_is_given_a_redis_socket_in_its_own_form(redis_url: str, broker: str) -> None:
    assert celery_broker_url(redis_url) == broker
