"""Settings, read from the environment only (this is the one module that reads it).

Unset ``DATABASE_URL`` / ``NATS_URL`` mean "the embedded servers of the devstack
running in this checkout" (``manage.py`` reads them from ``devstack/state.py``); without one running,
commands that need a database say so and exit.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "events",
    "devstack",
    "accounts",
    "shop",
    "inventory",
    "demo",
    "staff",
    "ops",
]

MIDDLEWARE = [
    "config.middleware.RequestContextMiddleware",
    "config.middleware.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# Websockets (and pages too) in separate ASGI processes: config/asgi.py, docs/architecture.md.
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context.storefront",
            ],
        },
    },
]

# https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool
# Django's psycopg pool: one pool per process, a connection borrowed per request
# (and per worker batch), never leaked whatever the server model.
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DATABASE_CONFIGURED = bool(DATABASE_URL)
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL or "postgresql://unconfigured.invalid/unconfigured"),
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["OPTIONS"] = {
    "pool": {
        "min_size": 1,
        "max_size": int(os.environ.get("DB_POOL_MAX_SIZE", "12")),
        "timeout": 10,
    },
}
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DJANGO_TEST_DATABASE", "test_shop")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# https://docs.djangoproject.com/en/5.2/topics/cache/
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# NATS JetStream, the event bus.
NATS_URL = os.environ.get("NATS_URL", "")
EVENT_STREAMS = {
    # name: subjects. File storage, duplicate window below (see events/streams.py).
    "SHOP": ["shop.>"],
    "INVENTORY": ["inventory.>"],
}
EVENT_STREAM_REPLICAS = int(os.environ.get("EVENT_STREAM_REPLICAS", "1"))
EVENT_DUPLICATE_WINDOW_SECONDS = 300
# Modules whose Event classes make the event catalogue (docs/events.asyncapi.json).
EVENT_PUBLISHERS = ["shop.events", "inventory.events"]
# The durable consumers this deployment runs, each an events.consumer.Consumer.
EVENT_CONSUMERS = [
    "inventory.handlers.CONSUMER",
    "shop.handlers.CONSUMER",
    "shop.projections.CONSUMER",
]
# Read models that rebuild_projections can drop and rebuild from the event log.
EVENT_PROJECTIONS = [
    "inventory.projections.STOCK",
    "shop.projections.STOCK_LEVELS",
]
# Checks run by verify_invariants; each returns a list of violations.
INVARIANT_CHECKS = [
    "inventory.checks.check_stock",
    "shop.checks.check_orders",
    "events.checks.check_outbox",
]
# Consumer runner: messages fetched (and committed) together, attempts before dead-lettering.
EVENT_BATCH_SIZE = int(os.environ.get("EVENT_BATCH_SIZE", "100"))
EVENT_MAX_DELIVER = int(os.environ.get("EVENT_MAX_DELIVER", "5"))
EVENT_WORKER_THREADS = int(os.environ.get("EVENT_WORKER_THREADS", "4"))
# Seconds a consumer waits after a batch that did not fill EVENT_BATCH_SIZE before fetching again,
# so that under load the next batch carries what arrived meanwhile (0: fetch again at once).
EVENT_FETCH_LINGER = float(os.environ.get("EVENT_FETCH_LINGER", "0"))
# Seconds JetStream waits for an ack before redelivering (to another worker if this one died).
EVENT_ACK_WAIT_SECONDS = float(os.environ.get("EVENT_ACK_WAIT_SECONDS", "30"))
# Relay: events per round, publishes in flight, seconds to wait for each ack, idle poll.
RELAY_BATCH_SIZE = int(os.environ.get("RELAY_BATCH_SIZE", "500"))
RELAY_MAX_IN_FLIGHT = int(os.environ.get("RELAY_MAX_IN_FLIGHT", "256"))
RELAY_PUBLISH_TIMEOUT = float(os.environ.get("RELAY_PUBLISH_TIMEOUT", "5"))
RELAY_POLL_INTERVAL = float(os.environ.get("RELAY_POLL_INTERVAL", "0.005"))
# Seconds the polling relay waits after a round that did not fill RELAY_BATCH_SIZE (0: poll again at once).
RELAY_LINGER = float(os.environ.get("RELAY_LINGER", "0.005"))
# How an idle relay learns of new events: "poll" the outbox every RELAY_POLL_INTERVAL, or
# "notify": each transaction that records events sends NOTIFY on RELAY_NOTIFY_CHANNEL and the
# relay LISTENs (polling only every RELAY_NOTIFY_FALLBACK seconds, in case one was missed).
RELAY_WAKEUP = os.environ.get("RELAY_WAKEUP", "poll")
if RELAY_WAKEUP not in ("poll", "notify"):
    raise ImproperlyConfigured(f"RELAY_WAKEUP must be poll or notify, not {RELAY_WAKEUP!r}")
RELAY_NOTIFY_CHANNEL = "events_outbox"
RELAY_NOTIFY_FALLBACK = float(os.environ.get("RELAY_NOTIFY_FALLBACK", "1"))

# Live stock and orders (shop/live.py). Each web process follows inventory.stock.> on core NATS
# and fans changes out to its own websockets, so an in-memory channel layer per process is enough:
# https://channels.readthedocs.io/en/stable/topics/channel_layers.html#in-memory-channel-layer
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Follow NATS in web processes (off in the test process itself, whose database is reset per test).
LIVE_FEED = _env_bool("LIVE_FEED", True)
# Port of the ASGI (websocket) processes as pages should reach them; empty = same origin (behind nginx).
LIVE_WS_PORT = os.environ.get("LIVE_WS_PORT", "")
# Seconds a level read from the projection (not from an event) stays in the near cache.
LIVE_CACHE_MISS_TTL = float(os.environ.get("LIVE_CACHE_MISS_TTL", "5"))
# SKUs one stock websocket may follow.
LIVE_MAX_SKUS = 200

# Orders.
ORDER_MAX_LINES = 100
ORDER_MAX_QUANTITY = 1000
RESTOCK_MAX_QUANTITY = 1_000_000
ORDER_PENDING_ALERT_SECONDS = int(os.environ.get("ORDER_PENDING_ALERT_SECONDS", "60"))
OUTBOX_UNPUBLISHED_ALERT_SECONDS = int(os.environ.get("OUTBOX_UNPUBLISHED_ALERT_SECONDS", "60"))
# Request bodies larger than this are refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/staff/login/"
LOGIN_REDIRECT_URL = "/staff/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# Logs (docs/observability.md): every line carries the fields of its flow (correlation_id, event_id, ...).
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# "console" for people, "json" for machines: one JSON object a line.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "console")
# One line per HTTP request and per event recorded, published and handled (the devstack turns it on).
LOG_FLOW = _env_bool("LOG_FLOW", False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"()": "events.logcontext.ConsoleFormatter"},
        "json": {"()": "events.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "console"}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "nats": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "events.flow": {"level": "INFO" if LOG_FLOW else "WARNING"},
    },
}

# Metrics: relay and workers serve their own /metrics on this port when set (one container each in
# docker-compose); in the devstack they share PROMETHEUS_MULTIPROC_DIR and the web serves them all.
METRICS_PORT = int(os.environ.get("METRICS_PORT", "0"))
# Real OpenTelemetry spans from the traceparent headers (needs the `otel` extras: `pip install ".[otel]"`).
TRACING_OTEL = _env_bool("TRACING_OTEL", False)
# Ops page: how many recent orders the per-hop latency chart shows.
OPS_RECENT_ORDERS = int(os.environ.get("OPS_RECENT_ORDERS", "30"))
