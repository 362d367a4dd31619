"""System checks that refuse settings which are only safe on a laptop.

They run when LEDGERFS_ENV=production, on every management command that runs checks (`migrate`
included), so a dangerous deployment stops before it serves anyone. Ids are stable: a retired
check keeps its number and the number is never reused.

    ledgerfs.E001  DEBUG is on
    ledgerfs.E002  SECRET_KEY is Django's insecure placeholder, too short or too repetitive
    ledgerfs.E003  ALLOWED_HOSTS contains "*"
    ledgerfs.E004  a database uses SQLite
    ledgerfs.E005  LEDGERFS_DEMO is on
    ledgerfs.W001  SECRET_KEY was generated into the data directory, not given in the environment
    ledgerfs.W002  SESSION_COOKIE_SECURE is off
    ledgerfs.W003  CSRF_COOKIE_SECURE is off
"""

from collections.abc import Callable

from django.conf import settings
from django.core import checks

SQLITE_ENGINE = "django.db.backends.sqlite3"
INSECURE_SECRET_KEY_PREFIX = "django-insecure-"
# The same thresholds as Django's own security.W009.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5


def debug_must_be_off() -> checks.CheckMessage | None:
    if settings.DEBUG:
        return checks.Error(
            "DEBUG is on in production; error pages would leak settings and source code.",
            hint="Unset DJANGO_DEBUG or set it to false.",
            id="ledgerfs.E001",
        )
    return None


def secret_key_must_be_strong() -> checks.CheckMessage | None:
    key = settings.SECRET_KEY
    if (
        key.startswith(INSECURE_SECRET_KEY_PREFIX)
        or len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
    ):
        return checks.Error(
            "SECRET_KEY is insecure: it is Django's placeholder, shorter than "
            f"{SECRET_KEY_MIN_LENGTH} characters or has fewer than "
            f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} distinct characters.",
            hint="Set DJANGO_SECRET_KEY to a long random value from your secret store.",
            id="ledgerfs.E002",
        )
    return None


def allowed_hosts_must_not_be_wildcard() -> checks.CheckMessage | None:
    if "*" in settings.ALLOWED_HOSTS:
        return checks.Error(
            'ALLOWED_HOSTS contains "*", which lets any Host header through.',
            hint="List the public host names in DJANGO_ALLOWED_HOSTS.",
            id="ledgerfs.E003",
        )
    return None


def database_must_not_be_sqlite() -> checks.CheckMessage | None:
    sqlite_aliases = sorted(
        alias
        for alias, database in settings.DATABASES.items()
        if database.get("ENGINE") == SQLITE_ENGINE
    )
    if sqlite_aliases:
        return checks.Error(
            f"Database {', '.join(sqlite_aliases)} uses SQLite, which production does not support.",
            hint="Set DATABASE_URL to a PostgreSQL database.",
            id="ledgerfs.E004",
        )
    return None


def demo_data_must_be_off() -> checks.CheckMessage | None:
    if settings.LEDGERFS_DEMO:
        return checks.Error(
            "LEDGERFS_DEMO is on in production; demo accounts and logins could be loaded.",
            hint="Unset LEDGERFS_DEMO or set it to false.",
            id="ledgerfs.E005",
        )
    return None


def secret_key_should_come_from_environment() -> checks.CheckMessage | None:
    if settings.LEDGERFS_SECRET_KEY_SOURCE != "environment":
        return checks.Warning(
            "SECRET_KEY was generated into the data directory; processes on other machines "
            "will not share it and it is not in your secret store.",
            hint="Set DJANGO_SECRET_KEY.",
            id="ledgerfs.W001",
        )
    return None


def session_cookie_should_be_secure() -> checks.CheckMessage | None:
    if not settings.SESSION_COOKIE_SECURE:
        return checks.Warning(
            "SESSION_COOKIE_SECURE is off; session cookies can travel over plain HTTP.",
            hint="Serve over HTTPS and unset DJANGO_SECURE_COOKIES or set it to true.",
            id="ledgerfs.W002",
        )
    return None


def csrf_cookie_should_be_secure() -> checks.CheckMessage | None:
    if not settings.CSRF_COOKIE_SECURE:
        return checks.Warning(
            "CSRF_COOKIE_SECURE is off; the CSRF cookie can travel over plain HTTP.",
            hint="Serve over HTTPS and unset DJANGO_SECURE_COOKIES or set it to true.",
            id="ledgerfs.W003",
        )
    return None


PRODUCTION_CHECKS: tuple[Callable[[], checks.CheckMessage | None], ...] = (
    debug_must_be_off,
    secret_key_must_be_strong,
    allowed_hosts_must_not_be_wildcard,
    database_must_not_be_sqlite,
    demo_data_must_be_off,
    secret_key_should_come_from_environment,
    session_cookie_should_be_secure,
    csrf_cookie_should_be_secure,
)


def check_production_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.LEDGERFS_ENV != "production":
        return []
    return [message for check in PRODUCTION_CHECKS if (message := check()) is not None]
