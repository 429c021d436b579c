"""DVR's one settings module, driven by the environment (django-environ).

With nothing set this is the embedded default: a SQLite file, a local-memory cache and
django-q2's ORM broker. ``DATABASE_URL`` and ``REDIS_URL`` switch to the production shape
(Postgres, Redis cache, Redis broker on another Redis database). With ``DEBUG`` off a
missing ``SECRET_KEY`` or ``ALLOWED_HOSTS`` stops start-up with a clear message, so no
development default can reach production.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _redis_db_url(url: str, db: int) -> str:
    """The same Redis server as ``url`` on database ``db``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _redis_db(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    try:
        return int(path or 0)
    except ValueError:
        raise ImproperlyConfigured(f"REDIS_URL has a database that is not a number: {path!r}")


DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="dvr-insecure-development-key-never-in-production")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
else:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=true for local development)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must be set when DEBUG is off, e.g. ALLOWED_HOSTS=dvr.example.com."
        )

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "django_htmx",
    "dvr.accounts",
    "manifest",
    "inventory",
]

MIDDLEWARE = [
    # First, so that every log line of the request, and every response, carries its id.
    "dvr.lib.logs.RequestIdMiddleware",
    # A NUL byte in the URL is a 400 at once (Postgres refuses NUL in text: it would be a 500).
    "dvr.lib.security.RefuseNulMiddleware",
    # Before anything reads the Host header: platform probes use the machine's private IP.
    "dvr.health.HealthzMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy (django-csp), with Bungie's image host from BUNGIE_ROOT_URL.
    "dvr.lib.security.DvrCSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After auth and htmx: turns dvr.accounts.tokens.LoginRequired into a trip to /login/.
    "dvr.accounts.middleware.BungieLoginRequiredMiddleware",
]

ROOT_URLCONF = "dvr.urls"
WSGI_APPLICATION = "dvr.wsgi.application"

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

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# With persistent connections (the web sets CONN_MAX_AGE: gunicorn.conf.py), check one
# before reuse so a restarted Postgres costs a reconnect, not an error page.
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server fails fast (healthz answers 503) instead of hanging a worker.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the site read while the cluster writes a new manifest version.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not memory, so the tests' qcluster and command subprocesses share it.
    DATABASES["default"]["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default=str(BASE_DIR / "var" / "test.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker -----------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    _cache_db = _redis_db(REDIS_URL)
    # The broker gets its own Redis database so the cache's never holds queued tasks.
    REDIS_BROKER_URL = env.str("REDIS_BROKER_URL", default=_redis_db_url(REDIS_URL, _cache_db + 1))
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="dvr"),
            "OPTIONS": {
                # Short timeouts: with Redis down a page falls back to the database quickly.
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "IGNORE_EXCEPTIONS": False,
            },
        }
    }
else:
    REDIS_BROKER_URL = ""
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "dvr",
            # Room for a few full pages of definitions (the default 300 is less than one).
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }

# --- django-q2 --------------------------------------------------------------------------
# A manifest sync is long (minutes at Bungie's full size): timeout well above it, retry
# above timeout (django-q2 requires it), one attempt only (the schedule will try again),
# and no catch-up storm after downtime.
Q_CLUSTER: dict[str, object] = {
    "name": env.str("Q_CLUSTER_NAME", default="dvr"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_TIMEOUT", default=1800) + 300,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "ack_failures": True,
    "poll": 1,
}
if REDIS_BROKER_URL:
    Q_CLUSTER["redis"] = REDIS_BROKER_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Bungie -----------------------------------------------------------------------------
BUNGIE_ROOT_URL = env.str("BUNGIE_ROOT_URL", default="https://www.bungie.net").rstrip("/")
BUNGIE_API_KEY = env.str("BUNGIE_API_KEY", default="")
BUNGIE_CLIENT_ID = env.str("BUNGIE_CLIENT_ID", default="")
BUNGIE_CLIENT_SECRET = env.str("BUNGIE_CLIENT_SECRET", default="")
# Seconds: (connect, read) for one Bungie request, and the most a retried GET may take.
BUNGIE_TIMEOUT = (env.float("BUNGIE_CONNECT_TIMEOUT", default=3.05), env.float("BUNGIE_READ_TIMEOUT", default=30))
BUNGIE_RETRY_BUDGET = env.float("BUNGIE_RETRY_BUDGET", default=30)

# --- Bungie login and stored tokens ---------------------------------------------------
# Fernet keys for the players' OAuth tokens at rest, newest first: the first encrypts, all
# decrypt (rotation: prepend a new key, run `manage.py rotate_token_keys`, drop the old).
# With DEBUG on and none set, one is derived from SECRET_KEY so a newcomer needs nothing.
TOKEN_ENCRYPTION_KEYS = env.list("TOKEN_ENCRYPTION_KEYS", default=[])
if not TOKEN_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "TOKEN_ENCRYPTION_KEYS must be set when DEBUG is off: one or more Fernet keys, comma-separated, "
            'newest first. Make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        )
    TOKEN_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(b"dvr-token-encryption:" + SECRET_KEY.encode()).digest()).decode()
    ]
for _number, _key in enumerate(TOKEN_ENCRYPTION_KEYS, 1):
    try:
        if len(base64.urlsafe_b64decode(_key.encode())) != 32:
            raise ValueError
    except ValueError:
        raise ImproperlyConfigured(
            f"TOKEN_ENCRYPTION_KEYS: key {_number} is not a Fernet key (32 url-safe base64-encoded bytes)."
        )
# A filter or sort typed on the vault page re-reads the profile Bungie gave this many
# seconds ago at most, instead of one GetProfile per keystroke (0: always ask Bungie).
PROFILE_REUSE_SECONDS = env.int("PROFILE_REUSE_SECONDS", default=30)
# "Tag all matching as …" refuses a filter matching more items than this (nothing tagged).
TAG_MATCHING_LIMIT = env.int("TAG_MATCHING_LIMIT", default=500)
# The largest DIM spreadsheet or backup a player may import, in bytes.
DIM_IMPORT_MAX_BYTES = env.int("DIM_IMPORT_MAX_BYTES", default=10_000_000)
# The largest wish list a player may import, in bytes (the community's voltron.txt is ~15 MB).
WISHLIST_MAX_BYTES = env.int("WISHLIST_MAX_BYTES", default=30_000_000)
# Wish lists fetched from a URL: only public addresses unless this is on (tests, a lab).
WISHLIST_URL_ALLOW_PRIVATE = env.bool("WISHLIST_URL_ALLOW_PRIVATE", default=False)
# The journal of Bungie writes keeps this many days; a daily schedule prunes older entries.
JOURNAL_KEEP_DAYS = env.int("JOURNAL_KEEP_DAYS", default=90)
# How long a player may take on Bungie's approval page before /oauth/callback/ refuses.
BUNGIE_LOGIN_STATE_SECONDS = env.int("BUNGIE_LOGIN_STATE_SECONDS", default=600)
LOGIN_REDIRECT_URL = "/"

# --- Manifest ---------------------------------------------------------------------------
MANIFEST_LANGUAGES = env.list("MANIFEST_LANGUAGES", default=["en"])
# Languages a sync stores at once on Postgres, each on a connection of its own (the
# database's work spreads over the cores); 1 stores them one after another.
MANIFEST_SYNC_LANES = env.int("MANIFEST_SYNC_LANES", default=2)
MANIFEST_CHECK_MINUTES = env.int("MANIFEST_CHECK_MINUTES", default=5)
# Bungie allows about one TransferItem per second per account: DVR waits this long between
# one account's transfers, with a margin for the network's jitter (the tests shorten it
# where the fake's limits are off).
BUNGIE_TRANSFER_PACE_SECONDS = env.float("BUNGIE_TRANSFER_PACE_SECONDS", default=1.15)
# Keep only the newest N versions that went live (0: keep every version): pruned after
# each sync that made one live, or by `manage.py prune_manifest`.
MANIFEST_KEEP_VERSIONS = env.int("MANIFEST_KEEP_VERSIONS", default=0)
MANIFEST_WEBHOOK_URL = env.str("MANIFEST_WEBHOOK_URL", default="")
MANIFEST_REFRESH_TOKEN = env.str("MANIFEST_REFRESH_TOKEN", default="")
# Calls of POST /manifest/refresh/ per minute per caller (token, staff user or address).
MANIFEST_REFRESH_RATE_LIMIT = env.int("MANIFEST_REFRESH_RATE_LIMIT", default=6)
# Where table files are streamed while a sync runs (default: the system temp dir).
MANIFEST_DOWNLOAD_DIR = env.str("MANIFEST_DOWNLOAD_DIR", default="") or None
# Base delay before re-fetching a table that 404s or answers HTML right after a publish.
MANIFEST_TABLE_RETRY_SECONDS = env.float("MANIFEST_TABLE_RETRY_SECONDS", default=2.0)
# The Bungie-shaped mirror (manifest/mirror.py): requests a minute per client address
# before a 429 with Retry-After; 0 turns the limit off.
MIRROR_RATE_LIMIT = env.int("MIRROR_RATE_LIMIT", default=600)
# Rebuilt table files kept on local disk (manifest/mirror_files.py), at most this many MB
# (0: off, every download is rebuilt from the rows), in this directory (default: a
# dvr-mirror folder in the system temp dir).
MIRROR_FILE_CACHE_MB = env.int("MIRROR_FILE_CACHE_MB", default=2048)
MIRROR_FILE_CACHE_DIR = env.str("MIRROR_FILE_CACHE_DIR", default="")
# A table file larger than this is refused before it fills the disk (Bungie's largest,
# the item table, is about 190 MB).
MANIFEST_MAX_TABLE_MB = env.int("MANIFEST_MAX_TABLE_MB", default=1024)
# While a sync keeps failing, the webhook repeats itself at most this often.
MANIFEST_WEBHOOK_REMINDER_HOURS = env.float("MANIFEST_WEBHOOK_REMINDER_HOURS", default=6.0)

# --- Static files, i18n -----------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGIN_URL = "/login/"

# --- Security (the production shape passes `manage.py check --deploy`) -------------------
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Only our own scripts, styles and requests; images also from BUNGIE_ROOT_URL (added per
# response by dvr.lib.security). No inline script or style anywhere in the templates; htmx is
# told not to inject its indicator style (base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging ----------------------------------------------------------------------------
# One line per event (dvr/lib/logs.py): key=value by default in production, JSON for a log
# shipper, plain for a terminal; each line a request causes carries its request id.
from dvr.lib.logs import logging_config  # noqa: E402

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "kv").lower()
LOGGING = logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)
