"""Settings for chatsite, read from the environment.

A malformed value stops start-up with an error that names the variable
(environs raises EnvValidationError). Nothing secret has a default here.
"""

import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from environs import Env

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()

DEBUG = env.bool("DEBUG", False)
# HTTPS turns on the production transport settings: secure cookies, HSTS and
# the redirect to https. `manage.py check --deploy` is clean with it on.
HTTPS = env.bool("HTTPS", False)

SECRET_KEY = env.str("SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set it to a random string of at least 50 characters, "
        "for example the output of: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
if not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for DEBUG=false: use at least 50 random characters."
    )
# HTTPS=true is production: debug pages there would show settings and code
# to anyone, and a key from a template or a test would let anyone forge sessions.
if HTTPS and DEBUG:
    raise ImproperlyConfigured(
        "DEBUG=true is not allowed with HTTPS=true (production). Unset DEBUG or set DEBUG=false."
    )
PLACEHOLDER_KEY_PREFIXES = ("django-insecure-", "test-only-key-", "collectstatic-only-", "change")
if HTTPS and (len(set(SECRET_KEY)) < 5 or SECRET_KEY.lower().startswith(PLACEHOLDER_KEY_PREFIXES)):
    raise ImproperlyConfigured(
        "SECRET_KEY looks like a placeholder or a test key, which is not allowed with "
        "HTTPS=true. Make one with: python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "accounts",
    "chat",
    "teams",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "chatsite.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "chatsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "chatsite.asgi.application"

DATABASES = {
    "default": env.dj_db_url(
        "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
    ),
}
# Seconds a database connection is kept for reuse; 0 opens one per request
# (or per database call of a reply), which costs a PostgreSQL backend start.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", "redis://127.0.0.1:6379/0")
if urlsplit(REDIS_URL).scheme not in ("redis", "rediss", "unix"):
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix://, not {REDIS_URL!r}."
    )

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            # A slow socket may fall behind a fast stream; the client notices a
            # gap in sequence numbers and asks for a snapshot, so nothing is lost
            # when a full channel drops a message.
            "capacity": 1000,
            "expiry": 60,
        },
    },
}
# `redis-pubsub` sends a group message with one PUBLISH that Redis pushes to
# the web processes, where the default layer needs about 19 Redis commands
# between the worker and the web process. A message published while no web
# process subscribes is lost; sockets see the gap in `seq` and ask for a
# snapshot.
CHANNEL_LAYER = env.str("CHANNEL_LAYER", "redis")
if CHANNEL_LAYER == "redis-pubsub":
    CHANNEL_LAYERS["default"] = {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
elif CHANNEL_LAYER != "redis":
    raise ImproperlyConfigured(
        f"CHANNEL_LAYER={CHANNEL_LAYER!r} is unknown; use redis or redis-pubsub."
    )

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
    },
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
# A reply task is acknowledged only when it ends, so a worker that dies
# mid-reply hands the task back to the broker instead of losing it.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# An unacknowledged task (its worker was killed) goes back to the queue after
# this long. The reply claim is idempotent, so a redelivered task that finds
# its reply already streaming or ended does nothing.
# Remote control (celery inspect/control) listens on a Redis pub/sub channel,
# and kombu 5.7 crashes the worker when that channel loses Redis ("Unrecoverable
# error: AttributeError ... 'hostname'"). Without it a worker rides out a
# Redis restart and reconnects by itself (tests/faults/test_redis_restart.py).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = env.bool("CELERY_REMOTE_CONTROL", False)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 3600),
}

# Lost workers. A streaming reply whose heartbeat is older than this is ended
# `interrupted`; a queued one is enqueued again once after the requeue delay,
# and given up after the queued limit. Celery beat schedules the sweep.
CHAT_STALE_HEARTBEAT_SECONDS = env.float("CHAT_STALE_HEARTBEAT_SECONDS", 60.0)
CHAT_REQUEUE_AFTER_SECONDS = env.float("CHAT_REQUEUE_AFTER_SECONDS", 30.0)
CHAT_STALE_QUEUED_SECONDS = env.int("CHAT_STALE_QUEUED_SECONDS", 600)
CHAT_SWEEP_SECONDS = env.float("CHAT_SWEEP_SECONDS", 15.0)
# The sweep has a queue of its own, consumed by the `beat` process (a small
# worker with the scheduler embedded), so it runs while reply workers are down.
SWEEP_QUEUE = "sweep"
CELERY_TASK_ROUTES = {
    "chat.sweep_replies": {"queue": SWEEP_QUEUE},
    "chat.purge_deleted_conversations": {"queue": SWEEP_QUEUE},
}
# A deleted conversation is hidden at once and removed for good after this
# many days, so staff can restore one on request until then (chat/purge.py).
CONVERSATION_PURGE_DAYS = env.int("CONVERSATION_PURGE_DAYS", 30)
if CONVERSATION_PURGE_DAYS < 0:
    raise ImproperlyConfigured(
        f"CONVERSATION_PURGE_DAYS={CONVERSATION_PURGE_DAYS} must be 0 or more days, such as 30."
    )
PURGE_EVERY_SECONDS = 3600
CELERY_BEAT_SCHEDULE = {
    "sweep-replies": {
        "task": "chat.sweep_replies",
        "schedule": CHAT_SWEEP_SECONDS,
        # A sweep nobody ran before the next one is due is dropped, not piled up.
        "options": {"expires": CHAT_SWEEP_SECONDS},
    },
    "purge-deleted-conversations": {
        "task": "chat.purge_deleted_conversations",
        "schedule": PURGE_EVERY_SECONDS,
        "options": {"expires": PURGE_EVERY_SECONDS},
    },
}

# Sign-in and sign-up throttles (django-ratelimit rates: count/period, in the
# shared Redis cache). Sign-in counts failed attempts, sign-up every attempt.
AUTH_THROTTLE_RATES = {
    "accounts.sign_in": {
        "account": env.str("SIGN_IN_ACCOUNT_RATE", "10/15m"),
        "ip": env.str("SIGN_IN_IP_RATE", "50/15m"),
    },
    "accounts.sign_up": {
        "account": env.str("SIGN_UP_ACCOUNT_RATE", "10/15m"),
        "ip": env.str("SIGN_UP_IP_RATE", "30/h"),
    },
}
RATELIMIT_USE_CACHE = "default"
for _limits in AUTH_THROTTLE_RATES.values():
    for _rate in _limits.values():
        if not re.fullmatch(r"[1-9]\d*/\d*[smhd]", _rate):
            raise ImproperlyConfigured(
                f"Throttle rate {_rate!r} is invalid; use count/period, such as 10/15m or 30/h."
            )

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("zh-hans", _("Simplified Chinese")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Chinese numbers grouped by three with a comma (chatsite/formats/zh_Hans).
FORMAT_MODULE_PATH = ["chatsite.formats"]
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# No inline scripts or styles anywhere in the site's pages; the admin is
# Django's own and is left out.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


# The upstream model server. Without DEEPSEEK_API_KEY and DEEPSEEK_BASE_URL the
# site talks to its own simulator, and every chat page says so.
def _http_url(name, default):
    # An empty value (as docker compose passes for an unset variable) means the default.
    if not env.str(name, ""):
        return default
    # environs returns a set value as a ParseResult.
    value = env.url(name, schemes={"http", "https"}, require_tld=False)
    return value if isinstance(value, str) else value.geturl()


DEEPSEEK_API_KEY = env.str("DEEPSEEK_API_KEY", "")
SIMULATOR_URL = _http_url("SIMULATOR_URL", "http://127.0.0.1:8300")
UPSTREAM_IS_SIMULATOR = not DEEPSEEK_API_KEY and not env.str("DEEPSEEK_BASE_URL", "")
DEEPSEEK_BASE_URL = _http_url(
    "DEEPSEEK_BASE_URL", SIMULATOR_URL if UPSTREAM_IS_SIMULATOR else "https://api.deepseek.com"
)
if UPSTREAM_IS_SIMULATOR:
    # The simulator accepts any bearer token; this one is not a secret.
    DEEPSEEK_API_KEY = "sk-simulator"
# DeepSeek's current model takes a `thinking` switch; `deepseek-reasoner`
# (R1) was retired from the API in July 2026.
DEEPSEEK_MODEL = env.str("DEEPSEEK_MODEL", "deepseek-flash")
DEEPSEEK_THINKING = env.bool("DEEPSEEK_THINKING", True)
UPSTREAM_MAX_RETRIES = env.int("UPSTREAM_MAX_RETRIES", 3)
UPSTREAM_BACKOFF_SECONDS = env.float("UPSTREAM_BACKOFF_SECONDS", 1.0)
UPSTREAM_READ_TIMEOUT_SECONDS = env.float("UPSTREAM_READ_TIMEOUT_SECONDS", 600.0)

# Slug of the model new conversations use; "environment" is the one the
# DEEPSEEK_* variables describe, created at `migrate`.
CHAT_DEFAULT_MODEL = env.str("CHAT_DEFAULT_MODEL", "environment")

# Visitors may chat without an account under the guest plan.
GUEST_ACCESS = env.bool("GUEST_ACCESS", False)
# Reverse proxies in front of the site; the client address is taken from
# X-Forwarded-For that many hops from the right. 0 trusts no header.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", 0)

# The quota day starts at this local time in this time zone.
QUOTA_TIME_ZONE = env.str("QUOTA_TIME_ZONE", "UTC")
QUOTA_RESET_AT = env.str("QUOTA_RESET_AT", "00:00")
try:
    ZoneInfo(QUOTA_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"QUOTA_TIME_ZONE={QUOTA_TIME_ZONE!r} is not a time zone; use a name such as "
        "UTC or Asia/Shanghai."
    ) from None
if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", QUOTA_RESET_AT):
    raise ImproperlyConfigured(
        f"QUOTA_RESET_AT={QUOTA_RESET_AT!r} is not a time; use HH:MM, such as 00:00."
    )

# The usage dashboard shows costs in yuan too, at this many CNY per US dollar.
# 7.2 is an example rate, not a live one: set the rate your accounts use.
USD_TO_CNY_RATE = env.decimal("USD_TO_CNY_RATE", Decimal("7.2"))
if USD_TO_CNY_RATE <= 0:
    raise ImproperlyConfigured(
        f"USD_TO_CNY_RATE={USD_TO_CNY_RATE} must be a positive number, such as 7.2."
    )
# Bearer token that Prometheus sends to /metrics; without it /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", "")

# Outgoing mail (sign-up links, password resets, team join links). Without
# EMAIL_HOST, mail is printed to the web process's output, which is enough to
# try the site on one machine: the sign-up link shows up there.
EMAIL_HOST = env.str("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env.int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "chatsite <noreply@localhost>")

# Chat limits.
CHAT_MAX_INPUT_CHARS = env.int("CHAT_MAX_INPUT_CHARS", 20_000)
# Estimated tokens of history sent upstream; older turns are dropped whole.
CHAT_CONTEXT_BUDGET_TOKENS = env.int("CHAT_CONTEXT_BUDGET_TOKENS", 48_000)
# Past the budget, history is cut only where the tokens before a turn pass a
# multiple of this share of the budget, so the start of the history (and the
# server's prompt cache) stays put for many turns. 0 drops as little as possible.
CHAT_CONTEXT_TRIM_STEP = env.float("CHAT_CONTEXT_TRIM_STEP", 0.25)
if not 0 <= CHAT_CONTEXT_TRIM_STEP < 1:
    raise ImproperlyConfigured(
        f"CHAT_CONTEXT_TRIM_STEP={CHAT_CONTEXT_TRIM_STEP} must be at least 0 and below 1, "
        "such as 0.25."
    )
CHAT_MAX_OUTPUT_TOKENS = env.int("CHAT_MAX_OUTPUT_TOKENS", 0) or None
# Deltas are gathered for this long before one event goes to the browser, or
# until this many characters are pending (0: no size limit).
CHAT_COALESCE_SECONDS = env.float("CHAT_COALESCE_SECONDS", 0.04)
CHAT_COALESCE_MAX_CHARS = env.int("CHAT_COALESCE_MAX_CHARS", 0)
CHAT_CHECKPOINT_SECONDS = env.float("CHAT_CHECKPOINT_SECONDS", 1.0)
# One transaction an interval writes the checkpoints of every reply of a
# worker process, and one MGET reads all their stop flags (chat/batching.py).
CHAT_CHECKPOINT_BATCH = env.bool("CHAT_CHECKPOINT_BATCH", True)
CHAT_CANCEL_POLL_BATCH = env.bool("CHAT_CANCEL_POLL_BATCH", True)
# Every CHAT_COALESCE_SECONDS one Redis pipeline sends the pending deltas of
# every reply of a worker process, instead of a flush per reply; it implies
# CHAT_CHECKPOINT_BATCH. Best with CHANNEL_LAYER=redis-pubsub, where each
# reply's delta is then one command.
CHAT_RELAY_BATCH = env.bool("CHAT_RELAY_BATCH", False)
# With CHAT_RELAY_BATCH, at most this many deltas a second leave a worker
# process: the tick grows past CHAT_COALESCE_SECONDS when many replies stream
# (0: no limit).
CHAT_RELAY_MAX_DELTAS_PER_SECOND = env.int("CHAT_RELAY_MAX_DELTAS_PER_SECOND", 0)
# Run the worker's shared event loop on uvloop instead of asyncio's own loop.
CHAT_WORKER_UVLOOP = env.bool("CHAT_WORKER_UVLOOP", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs every request URL at INFO; keep it quiet.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
