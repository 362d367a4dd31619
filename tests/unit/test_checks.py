"""One row per production check id; each row breaks exactly one setting of a safe baseline."""

import pytest
from django.test import override_settings

from config.checks import PRODUCTION_CHECKS, check_production_settings

STRONG_SECRET_KEY = "k3J9x!Qz" * 8
SAFE_PRODUCTION = {
    "LEDGERFS_ENV": "production",
    "DEBUG": False,
    "SECRET_KEY": STRONG_SECRET_KEY,
    "LEDGERFS_SECRET_KEY_SOURCE": "environment",
    "ALLOWED_HOSTS": ["ledger.example.com"],
    "DATABASES": {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "ledgerfs"}},
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "LEDGERFS_DEMO": False,
}

# Overriding DATABASES warns that open connections are not updated; these checks only read it.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def check_ids(**changes: object) -> list[str]:
    with override_settings(**{**SAFE_PRODUCTION, **changes}):
        return [message.id for message in check_production_settings()]


def test_safe_production_settings_pass() -> None:
    assert check_ids() == []


@pytest.mark.parametrize(
    ("check_id", "changes"),
    [
        ("ledgerfs.E001", {"DEBUG": True}),
        ("ledgerfs.E002", {"SECRET_KEY": "django-insecure-" + STRONG_SECRET_KEY}),
        ("ledgerfs.E002", {"SECRET_KEY": STRONG_SECRET_KEY[:49]}),
        ("ledgerfs.E002", {"SECRET_KEY": "abcd" * 20}),
        ("ledgerfs.E003", {"ALLOWED_HOSTS": ["ledger.example.com", "*"]}),
        (
            "ledgerfs.E004",
            {"DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}}},
        ),
        ("ledgerfs.E005", {"LEDGERFS_DEMO": True}),
        ("ledgerfs.W001", {"LEDGERFS_SECRET_KEY_SOURCE": "data_dir"}),
        ("ledgerfs.W002", {"SESSION_COOKIE_SECURE": False}),
        ("ledgerfs.W003", {"CSRF_COOKIE_SECURE": False}),
    ],
)
def test_each_dangerous_setting_has_its_own_id(check_id: str, changes: dict[str, object]) -> None:
    assert check_ids(**changes) == [check_id]


def test_checks_are_silent_outside_production() -> None:
    everything_wrong = {
        "LEDGERFS_ENV": "embedded",
        "DEBUG": True,
        "SECRET_KEY": "short",
        "ALLOWED_HOSTS": ["*"],
        "LEDGERFS_DEMO": True,
        "SESSION_COOKIE_SECURE": False,
    }
    assert check_ids(**everything_wrong) == []


def test_ids_are_unique_per_check() -> None:
    with override_settings(
        LEDGERFS_ENV="production",
        DEBUG=True,
        SECRET_KEY="short",
        LEDGERFS_SECRET_KEY_SOURCE="data_dir",
        ALLOWED_HOSTS=["*"],
        LEDGERFS_DEMO=True,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "x"}},
    ):
        ids = [message.id for message in check_production_settings()]
    assert len(ids) == len(set(ids)) == len(PRODUCTION_CHECKS)


def test_checks_are_registered_with_django() -> None:
    from django.core import checks

    assert check_production_settings in checks.registry.registry.get_checks()
