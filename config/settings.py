"""Django settings for LedgerFS, read from the environment through config.env.

With no environment at all this is the embedded mode: SQLite and generated secrets under
LEDGERFS_DATA_DIR (default ./var), demo data allowed. LEDGERFS_ENV=production turns on the
system checks in config.checks, which refuse settings that are only safe on a laptop.
"""

from pathlib import Path

import dj_database_url

from config.cpus import place_other
from config.env import env_bool, env_int, env_list, env_str
from config.redis_urls import celery_broker_url
from config.secret_key import secret_key_load_or_create

BASE_DIR = Path(__file__).resolve().parent.parent

LEDGERFS_ENV = env_str("LEDGERFS_ENV", "embedded", choices=("embedded", "production"))
LEDGERFS_DATA_DIR = Path(env_str("LEDGERFS_DATA_DIR") or BASE_DIR / "var").resolve()
LEDGERFS_DATA_DIR.mkdir(parents=True, exist_ok=True)
LEDGERFS_DEMO = env_bool("LEDGERFS_DEMO", default=LEDGERFS_ENV == "embedded")
# Where vulnerability reports go (/.well-known/security.txt, RFC 9116): a mailto: or https: URI.
LEDGERFS_SECURITY_CONTACT = env_str("LEDGERFS_SECURITY_CONTACT", "mailto:security@example.com")
# "thread": a background thread projects committed events into the read models (servers);
# "manual": projection only through explicit catch-up calls (tests, one-off commands).
LEDGERFS_PROJECTOR = env_str("LEDGERFS_PROJECTOR", "thread", choices=("thread", "manual"))

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
LEDGERFS_SECRET_KEY_SOURCE = "environment"
if SECRET_KEY is None:
    SECRET_KEY = secret_key_load_or_create(LEDGERFS_DATA_DIR / "secret_key")
    LEDGERFS_SECRET_KEY_SOURCE = "data_dir"

DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool(
    "DJANGO_SECURE_COOKIES", default=LEDGERFS_ENV == "production"
)

# Set: distributed mode (Celery broker, ...). Unset: embedded mode, everything in one process.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # Off the CPUs set aside for the shards' writers, if any (LEDGERFS_WRITER_CPUS): every
    # process of the stack loads these settings first; `ledger_writer` moves itself onto them.
    place_other()

# -- Celery (config.celery) and attestation (DESIGN 5) -------------------------------------------
# Embedded mode runs tasks eagerly in the caller; "thread" runs the beat schedule on a thread of
# the web process (servers; "manual" projection means tests or one-off commands: "off").
CELERY_BROKER_URL = celery_broker_url(REDIS_URL) if REDIS_URL else "memory://"
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(LEDGERFS_DATA_DIR / "celerybeat-schedule")
# Prefix of every Celery key in Redis, so deployments (or test runs) can share one server.
LEDGERFS_REDIS_KEY_PREFIX = env_str("LEDGERFS_REDIS_KEY_PREFIX")
if LEDGERFS_REDIS_KEY_PREFIX:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": LEDGERFS_REDIS_KEY_PREFIX}
LEDGERFS_BEAT = env_str(
    "LEDGERFS_BEAT",
    "celery" if REDIS_URL else ("thread" if LEDGERFS_PROJECTOR == "thread" else "off"),
    choices=("thread", "celery", "off"),
)
LEDGERFS_SEAL_INTERVAL_MS = env_int("LEDGERFS_SEAL_INTERVAL_MS", 1000, min_value=50)
LEDGERFS_SEAL_MAX_BLOCK_EVENTS = env_int("LEDGERFS_SEAL_MAX_BLOCK_EVENTS", 50_000, min_value=1)
# Sealing has its own queue, served by one single-process worker (Procfile `sealer`): a shard's
# seal store is opened by one process at a time, so concurrent sealers would only skip ticks.
CELERY_TASK_ROUTES = {"attestation.*": {"queue": "sealing"}}
CELERY_BEAT_SCHEDULE = {
    "seal-ledgers": {
        "task": "attestation.seal_ledgers",
        "schedule": LEDGERFS_SEAL_INTERVAL_MS / 1000,
        # A tick nobody ran in time is dropped: the next one seals everything anyway.
        "options": {"expires": max(LEDGERFS_SEAL_INTERVAL_MS / 1000 * 5, 5)},
    },
    # Restarts webhook deliveries whose kick was lost (a worker died, a broker restart).
    "webhooks-deliver-due": {
        "task": "webhooks.deliver_due", "schedule": 5.0, "options": {"expires": 10},
    },
}
# Checkpoint origin (= signing key name) of ledger CODE: "<prefix>/<CODE>".
LEDGERFS_CHECKPOINT_ORIGIN_PREFIX = env_str("LEDGERFS_CHECKPOINT_ORIGIN_PREFIX", "ledgerfs.local")
# Signer keys ("PRIVATE+KEY+<origin>+<id>+<key>", comma-separated); a ledger without one here
# gets a key generated into LEDGERFS_DATA_DIR/keys/<CODE>.key (0600) on first use.
LEDGERFS_SIGNING_KEYS = env_list("LEDGERFS_SIGNING_KEYS")
# External digest sinks: a write-once directory always (default LEDGERFS_DATA_DIR/digests; put
# it on storage the operators cannot rewrite), plus S3 Object Lock when a bucket is named.
LEDGERFS_DIGEST_SINKS = [
    {"backend": "attestation.sinks.DirectorySink", "name": "directory",
     "path": env_str("LEDGERFS_DIGEST_DIR")},
]
if env_str("LEDGERFS_DIGEST_S3_BUCKET"):
    LEDGERFS_DIGEST_SINKS.append({
        "backend": "attestation.sinks.S3ObjectLockSink", "name": "s3",
        "bucket": env_str("LEDGERFS_DIGEST_S3_BUCKET"),
        "prefix": env_str("LEDGERFS_DIGEST_S3_PREFIX", "ledgerfs/"),
        "retention_days": env_int("LEDGERFS_DIGEST_S3_RETENTION_DAYS", 2555, min_value=1),
        "endpoint_url": env_str("LEDGERFS_DIGEST_S3_ENDPOINT_URL"),
        "region_name": env_str("LEDGERFS_DIGEST_S3_REGION"),
    })

DATABASE_URL = env_str("DATABASE_URL")
# How commands reach the writers. "inprocess" (embedded): writer threads in this process.
# "redis" (distributed): one writer process per ledger (`manage.py ledger_writer --ledger CODE`)
# behind a Redis bus; other processes read the shards as RocksDB secondary instances. The
# default once both DATABASE_URL and REDIS_URL are set.
LEDGERFS_BUS = env_str(
    "LEDGERFS_BUS", "redis" if REDIS_URL and DATABASE_URL else "inprocess",
    choices=("inprocess", "redis"),
)
LEDGERFS_BUS_TIMEOUT_SECONDS = env_int("LEDGERFS_BUS_TIMEOUT_SECONDS", 30, min_value=1)
# Transfers and balance reads answered ahead of Django when they can be (ledger.api.fastlane).
LEDGERFS_FAST_LANE = env_bool("LEDGERFS_FAST_LANE", default=True)
if DATABASE_URL is not None:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": LEDGERFS_DATA_DIR / "ledgerfs.sqlite3",
            "OPTIONS": {
                "timeout": 20,
                # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock
                # when a transaction starts, so lock waits honour the timeout instead of
                # failing with "database is locked" on upgrade.
                "init_command": "PRAGMA journal_mode=WAL;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "config.apps.ConfigConfig",
    "ledger.apps.LedgerConfig",
    "attestation.apps.AttestationConfig",
    # HTTP APIs: ninja (ledger API, serves its Swagger UI files locally), DRF (ops API),
    # guardian (object permissions on accounts), API keys and the ops resources.
    "ninja",
    "rest_framework",
    "guardian",
    "apiaccess.apps.ApiAccessConfig",
    "ops.apps.OpsConfig",
    # Live stream (/ws/events/), compliance dashboard, webhooks, AML alerts.
    "aml.apps.AmlConfig",
    "webhooks.apps.WebhooksConfig",
    "monitoring.apps.MonitoringConfig",
]

# -- Streaming, webhooks, AML (docs/streaming.md, docs/webhooks.md) -----------------------------
# Channels: channels_redis when REDIS_URL is set (the relay may run in another process than the
# WebSocket consumers), else the in-memory layer of this one process. Messages a full channel
# cannot take are dropped; consumers read what they missed from the log.
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # A read timeout above the layer's 5 s blocking pop: redis-py 8 defaults to 5 s,
            # which tears down idle consumers (django/channels_redis#422).
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": f"{LEDGERFS_REDIS_KEY_PREFIX or ''}asgi", "capacity": 1_000, "expiry": 30,
        },
    }}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer",
                                  "CONFIG": {"capacity": 1_000, "expiry": 30}}}
# "thread": this process relays committed events to WebSockets and runs the AML/webhook/totals
# monitor, as threads beside its writers (embedded mode; servers). "off": neither (tests, one-off
# commands). The distributed mode runs them in `manage.py monitor` instead.
LEDGERFS_MONITOR = env_str(
    "LEDGERFS_MONITOR", "thread" if LEDGERFS_PROJECTOR == "thread" else "off",
    choices=("thread", "off"),
)
# Webhook targets on private, loopback or link-local addresses are refused unless allowed.
LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool(
    "LEDGERFS_WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False
)
LEDGERFS_WEBHOOK_MAX_ATTEMPTS = env_int("LEDGERFS_WEBHOOK_MAX_ATTEMPTS", 10, min_value=1)
# Wait before the first retry; it doubles with every failed attempt, up to the maximum.
LEDGERFS_WEBHOOK_BACKOFF_MS = env_int("LEDGERFS_WEBHOOK_BACKOFF_MS", 5_000, min_value=1)
LEDGERFS_WEBHOOK_BACKOFF_MAX_SECONDS = env_int(
    "LEDGERFS_WEBHOOK_BACKOFF_MAX_SECONDS", 3_600, min_value=1
)
LEDGERFS_WEBHOOK_TIMEOUT_SECONDS = env_int("LEDGERFS_WEBHOOK_TIMEOUT_SECONDS", 10, min_value=1)

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "AnonymousUser" row: anonymous requests never get object permissions.
ANONYMOUS_USER_NAME = None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apiaccess.drf.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "ops.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# A transfer batch holds up to 8,000 commands; bodies above this are refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every error under /api/ leaves as the one JSON error shape, whoever produced it.
    "apiaccess.middleware.ApiErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = LEDGERFS_DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start while it is missing.
# WhiteNoise serves straight from the finders, so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

LOG_LEVEL = env_str(
    "LEDGERFS_LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
