"""Settings, read from the environment only (this is the one module that reads it).

Each variable is read and cast by django-environ
(https://django-environ.readthedocs.io/en/latest/types.html); no ``.env``
file is read. Unset ``DATABASE_URL`` / ``NATS_URL`` mean "the embedded servers of the devstack
running in this checkout": ``manage.py`` fills them in from ``devstack/state.py``
before these settings load; without one running, commands that need a database
say so and exit.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

# https://docs.djangoproject.com/en/5.2/topics/settings/
BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / ".data"

# A value that starts with "$" names another variable to read instead (django-environ's proxied values):
# https://django-environ.readthedocs.io/en/latest/tips.html#proxy-value
env = environ.Env()

# GENERAL
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# https://docs.djangoproject.com/en/5.2/ref/settings/#allowed-hosts
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# https://docs.python.org/3/library/gc.html#gc.freeze
# Long-running processes freeze their start-up heap, out of the cycle collector's walks (events/heap.py).
GC_FREEZE = env.bool("GC_FREEZE", default=True)

# HTTPS AND SECURITY HEADERS
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# https://docs.djangoproject.com/en/5.2/ref/middleware/#module-django.middleware.security
# Every hardening `manage.py check --deploy` asks for is on (with DEBUG off), so that it finds nothing;
# DJANGO_HTTPS=0 turns them all off for a plain-HTTP setup (the devstack, the test and lab stacks, compose
# behind its plain-HTTP nginx), and each variable below turns one off or on by itself.
HTTPS = env.bool("DJANGO_HTTPS", default=not DEBUG)
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-ssl-redirect
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=HTTPS)
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-redirect-exempt
# Probes and scrapes from inside the deployment speak plain HTTP: no redirect for them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-proxy-ssl-header
# Behind a proxy that terminates TLS: trust its X-Forwarded-Proto (only if it always sets it).
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# https://docs.djangoproject.com/en/5.2/ref/settings/#secure-hsts-seconds
# A year, with subdomains; preload asks browsers' preload lists to take the domain (once it is submitted
# at https://hstspreload.org/). Browsers remember HSTS: start with a short time on a new domain.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=HTTPS)
# https://docs.djangoproject.com/en/5.2/ref/settings/#session-cookie-secure
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=HTTPS)
# https://docs.djangoproject.com/en/5.2/ref/settings/#csrf-cookie-secure
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=HTTPS)

# APPS
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#installed-apps
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "events",
    "web",
    "devstack",
    "accounts",
    "shop",
    "inventory",
    "demo",
    "staff",
    "ops",
]

# MIDDLEWARE
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#middleware
# The security headers' two middleware come first: every response passes them, the JSON errors that
# JsonErrorsMiddleware builds included (a middleware sees only the responses of those below it).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.RequestContextMiddleware",
    "web.middleware.JsonErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# URLS AND SERVERS
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#root-urlconf
ROOT_URLCONF = "config.urls"
# https://docs.djangoproject.com/en/5.2/ref/settings/#wsgi-application
WSGI_APPLICATION = "config.wsgi.application"
# https://channels.readthedocs.io/en/stable/installation.html
# Websockets (and pages too) in separate ASGI processes: config/asgi.py, docs/architecture.md.
ASGI_APPLICATION = "config.asgi.application"

# TEMPLATES
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#templates
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

# DATABASES
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASE_URL = env.str("DATABASE_URL", default="")
DATABASE_CONFIGURED = bool(DATABASE_URL)
DATABASES = {
    "default": {
        **env.db_url_config(DATABASE_URL or "postgresql://unconfigured.invalid/unconfigured"),
        # https://docs.djangoproject.com/en/5.2/ref/settings/#conn-max-age
        # 0: the pool below keeps the connections, Django hands each back after a request.
        "CONN_MAX_AGE": 0,
        # https://docs.djangoproject.com/en/5.2/ref/settings/#conn-health-checks
        "CONN_HEALTH_CHECKS": False,
        # https://docs.djangoproject.com/en/5.2/ref/settings/#disable-server-side-cursors
        "DISABLE_SERVER_SIDE_CURSORS": False,
        # https://docs.djangoproject.com/en/5.2/ref/databases/#connection-pool
        # https://www.psycopg.org/psycopg3/docs/api/pool.html#psycopg_pool.ConnectionPool
        # Django's psycopg pool: one pool per process, a connection borrowed per request
        # (and per worker batch), never leaked whatever the server model.
        "OPTIONS": {
            # https://docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
            # Off, Django's default: the lab's `server-binding` scenario (parameters sent apart from the statement,
            # statements run often prepared) measured no gain over quoting them in (docs/benchmarks.md).
            "server_side_binding": env.bool("DB_SERVER_SIDE_BINDING", default=False),
            "pool": {
                "min_size": 1,
                "max_size": env.int("DB_POOL_MAX_SIZE", default=12),
                "timeout": 10,
            },
        },
        # https://docs.djangoproject.com/en/5.2/ref/settings/#test
        "TEST": {"NAME": env.str("DJANGO_TEST_DATABASE", default="test_shop")},
    },
}
# https://docs.djangoproject.com/en/5.2/ref/settings/#default-auto-field
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# CACHES
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/cache/
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# THE EVENT BUS: NATS JETSTREAM
# ------------------------------------------------------------------------------
# https://docs.nats.io/using-nats/developer/connecting
NATS_URL = env.str("NATS_URL", default="")
# The user of the staff's dead-letter replay (ops/services.py), in the web processes; unset: NATS_URL's.
# Each process's NATS user is in its URL (nats://user:password@host:port): deploy/nats/auth.conf.
NATS_OPS_URL = env.str("NATS_OPS_URL", default="")
# https://docs.nats.io/nats-concepts/jetstream/streams
# name: subjects. File storage, duplicate window and replicas below (events/bus.py, stream_config).
EVENT_STREAMS = {
    "SHOP": ["shop.>"],
    "INVENTORY": ["inventory.>"],
}
EVENT_STREAM_REPLICAS = env.int("EVENT_STREAM_REPLICAS", default=1)
# https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive#message-deduplication
EVENT_DUPLICATE_WINDOW_SECONDS = 300
# https://www.asyncapi.com/docs/reference/specification/v3.0.0
# Modules whose Event classes make the event catalogue (docs/events.asyncapi.json).
EVENT_PUBLISHERS = ["shop.events", "inventory.events"]
# The durable consumers this deployment runs, each an events.consumer.Consumer.
EVENT_CONSUMERS = [
    "inventory.handlers.CONSUMER",
    "shop.handlers.CONSUMER",
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

# THE CONSUMER RUNNER
# ------------------------------------------------------------------------------
# https://docs.nats.io/nats-concepts/jetstream/consumers
# Messages fetched (and committed) together, attempts before dead-lettering, threads per worker.
EVENT_BATCH_SIZE = env.int("EVENT_BATCH_SIZE", default=100)
EVENT_MAX_DELIVER = env.int("EVENT_MAX_DELIVER", default=5)
EVENT_WORKER_THREADS = env.int("EVENT_WORKER_THREADS", default=4)
# Seconds a consumer waits after a batch that did not fill EVENT_BATCH_SIZE before fetching again,
# so that under load the next batch carries what arrived meanwhile (0: fetch again at once).
EVENT_FETCH_LINGER = env.float("EVENT_FETCH_LINGER", default=0.0)
# Adaptive linger, when EVENT_FETCH_LINGER is 0: after a batch of several messages, if messages lately arrive
# fast enough that as many again come within this many seconds, wait as long as that batch took (at most
# this); else, not at all. 0 turns it off (docs/architecture.md, "Batches that fill themselves").
EVENT_FETCH_LINGER_MAX = env.float("EVENT_FETCH_LINGER_MAX", default=0.004)
# https://docs.nats.io/nats-concepts/jetstream/consumers#ackwait
# Seconds JetStream waits for an ack before redelivering (to another worker if this one died).
EVENT_ACK_WAIT_SECONDS = env.float("EVENT_ACK_WAIT_SECONDS", default=30.0)

# PUBLISH AFTER COMMIT AND THE OUTBOX RELAY
# ------------------------------------------------------------------------------
# https://microservices.io/patterns/data/transactional-outbox.html
# Web and worker processes publish the events they commit right after the commit (events/publisher.py);
# the relay publishes only what they did not, once it is RELAY_SWEEP_AGE seconds old.
# Off: the relay publishes every event (RELAY_SWEEP_AGE 0, polling every 5 ms).
EVENT_PUBLISH_AFTER_COMMIT = env.bool("EVENT_PUBLISH_AFTER_COMMIT", default=True)
RELAY_SWEEP_AGE = env.float("RELAY_SWEEP_AGE", default=1.0 if EVENT_PUBLISH_AFTER_COMMIT else 0.0)
# A fault to inject, never a production setting: seconds each publisher waits before publishing.
EVENT_PUBLISH_DELAY = env.float("EVENT_PUBLISH_DELAY", default=0.0)
# A worker sends the events its batches commit from the consumer runner's own loop and NATS connection,
# right after each batch and before its acks; off: it hands them to a publisher thread, as web processes do.
EVENT_RUNNER_PUBLISHES = env.bool("EVENT_RUNNER_PUBLISHES", default=True)
# A worker hands the events its batches commit straight to its own consumers that take them (the inventory's
# StockReserved to the shop's), in process, while they are also published: the stream's copy, when it comes,
# is acked without being applied again (docs/architecture.md, "Hand-off in process"). Off: only the bus.
EVENT_HANDOFF = env.bool("EVENT_HANDOFF", default=True)
# https://docs.nats.io/using-nats/developer/develop_jetstream/publish
# Events per round, publishes in flight, seconds to wait for each ack, idle poll.
RELAY_BATCH_SIZE = env.int("RELAY_BATCH_SIZE", default=500)
RELAY_MAX_IN_FLIGHT = env.int("RELAY_MAX_IN_FLIGHT", default=256)
RELAY_PUBLISH_TIMEOUT = env.float("RELAY_PUBLISH_TIMEOUT", default=5.0)
RELAY_POLL_INTERVAL = env.float("RELAY_POLL_INTERVAL", default=0.25 if RELAY_SWEEP_AGE else 0.005)
# Seconds the polling relay waits after a round that did not fill RELAY_BATCH_SIZE (0: poll again at once).
RELAY_LINGER = env.float("RELAY_LINGER", default=0.005)
# Seconds before a row refused for its own fault (over max_payload, no stream) is tried again:
# RELAY_RETRY_BASE × 2^attempts, at most RELAY_RETRY_MAX; meanwhile the rows behind it flow.
RELAY_RETRY_BASE = env.float("RELAY_RETRY_BASE", default=1.0)
RELAY_RETRY_MAX = env.float("RELAY_RETRY_MAX", default=300.0)
# https://www.postgresql.org/docs/current/sql-notify.html
# How an idle relay learns of new events: "poll" the outbox every RELAY_POLL_INTERVAL, or
# "notify": each transaction that records events sends NOTIFY on RELAY_NOTIFY_CHANNEL and the
# relay LISTENs (polling only every RELAY_NOTIFY_FALLBACK seconds, in case one was missed).
RELAY_WAKEUP = env.str("RELAY_WAKEUP", default="poll")
if RELAY_WAKEUP not in ("poll", "notify"):
    raise ImproperlyConfigured(f"RELAY_WAKEUP must be poll or notify, not {RELAY_WAKEUP!r}")
RELAY_NOTIFY_CHANNEL = "events_outbox"
RELAY_NOTIFY_FALLBACK = env.float("RELAY_NOTIFY_FALLBACK", default=1.0)

# LIVE STOCK AND ORDERS (shop/live.py)
# ------------------------------------------------------------------------------
# https://channels.readthedocs.io/en/stable/topics/channel_layers.html#in-memory-channel-layer
# Each web process follows inventory.stock.> on core NATS and fans changes out to its own
# websockets, so an in-memory channel layer per process is enough.
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# https://docs.nats.io/nats-concepts/core-nats/pubsub
# Follow NATS in web processes (off in the test process itself, whose database is reset per test).
LIVE_FEED = env.bool("LIVE_FEED", default=True)
# Port of the ASGI (websocket) processes as pages should reach them; empty = same origin (behind nginx).
LIVE_WS_PORT = env.str("LIVE_WS_PORT", default="")
# Seconds a level read from the projection (not from an event) stays in the near cache.
LIVE_CACHE_MISS_TTL = env.float("LIVE_CACHE_MISS_TTL", default=5.0)
# SKUs one stock websocket may follow.
LIVE_MAX_SKUS = 200

# ORDERS
# ------------------------------------------------------------------------------
# Bounds of an order and of a restock in the HTTP contract (docs/openapi.json); verify_invariants' alerts
# (README.md, "Commands").
ORDER_MAX_LINES = 100
ORDER_MAX_QUANTITY = 1000
RESTOCK_MAX_QUANTITY = 1_000_000
ORDER_PENDING_ALERT_SECONDS = env.int("ORDER_PENDING_ALERT_SECONDS", default=60)
OUTBOX_UNPUBLISHED_ALERT_SECONDS = env.int("OUTBOX_UNPUBLISHED_ALERT_SECONDS", default=60)
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
# Request bodies larger than this are refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# RATE LIMITS (web/ratelimit.py)
# ------------------------------------------------------------------------------
# https://owasp.org/API-Security/editions/2023/en/0xa6-unrestricted-access-to-sensitive-business-flows/
# A token bucket per client address and per API token for each scope, in the default cache (shared by
# every process only with REDIS_URL). On here and in compose; the devstack, the test and lab stacks turn
# them off, so that load from one address measures the shop.
RATE_LIMITS = env.bool("RATE_LIMITS", default=True)
RATE_LIMIT_CACHE = "default"


def _rate(name: str, default: str) -> tuple[int, float]:
    """Return (capacity, period in seconds) of a "N/S" rule: N writes at once, refilled at N per S seconds."""
    text = env.str(name, default=default)
    capacity, _, period = text.partition("/")
    try:
        rule = int(capacity), float(period)
    except ValueError:
        rule = (0, 0.0)
    if rule[0] < 1 or rule[1] <= 0:
        raise ImproperlyConfigured(
            f"{name} must be N/S (N writes in a burst, refilled at N per S seconds), not {text!r}"
        )
    return rule


# The scopes and their buckets: README.md ("Rate limits", RATE_LIMIT_ORDERS, RATE_LIMIT_STAFF_WRITES).
RATE_LIMIT_RULES = {
    # POST /api/orders and the checkout form.
    "orders": _rate("RATE_LIMIT_ORDERS", "10/60"),
    # Restocks (API and staff page) and dead-letter replays.
    "staff_writes": _rate("RATE_LIMIT_STAFF_WRITES", "60/60"),
}
# Proxies in front of the web processes that append to X-Forwarded-For (compose: nginx, 1); 0 trusts none.
RATE_LIMIT_PROXIES = env.int("RATE_LIMIT_PROXIES", default=0)

# AUTHENTICATION
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#auth-password-validators
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# https://docs.djangoproject.com/en/5.2/ref/settings/#login-url
LOGIN_URL = "/staff/login/"
# https://docs.djangoproject.com/en/5.2/ref/settings/#login-redirect-url
LOGIN_REDIRECT_URL = "/staff/"
# https://docs.djangoproject.com/en/5.2/ref/settings/#logout-redirect-url
LOGOUT_REDIRECT_URL = "/"

# INTERNATIONALIZATION
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/i18n/
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# STATIC FILES
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/settings/#static-url
STATIC_URL = "static/"
# https://docs.djangoproject.com/en/5.2/ref/settings/#static-root
STATIC_ROOT = DATA_DIR / "static"

# LOGGING
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/topics/logging/
# Every line carries the fields of its flow (correlation_id, event_id, ...): docs/observability.md.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "console" for people, "json" for machines: one JSON object a line.
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
# One line per HTTP request and per event recorded, published and handled (the devstack turns it on).
LOG_FLOW = env.bool("LOG_FLOW", default=False)
# https://docs.python.org/3/library/logging.handlers.html#watchedfilehandler
# Where the flow's lines go instead of the console (the devstack: .data/devstack/flow.log); every process
# appends to it, so one grep of an order id there tells its whole story.
LOG_FLOW_FILE = env.str("LOG_FLOW_FILE", default="")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"()": "events.logcontext.ConsoleFormatter"},
        "json": {"()": "events.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_FORMAT == "json" else "console"},
        **(
            {
                "flow_file": {
                    "class": "logging.handlers.WatchedFileHandler",
                    "filename": LOG_FLOW_FILE,
                    "formatter": "json" if LOG_FORMAT == "json" else "console",
                },
                "console_warnings": {
                    "class": "logging.StreamHandler",
                    "level": "WARNING",
                    "formatter": "json" if LOG_FORMAT == "json" else "console",
                },
            }
            if LOG_FLOW_FILE
            else {}
        ),
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "nats": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "events.flow": {
            "level": "INFO" if LOG_FLOW else "WARNING",
            **({"handlers": ["flow_file", "console_warnings"], "propagate": False} if LOG_FLOW_FILE else {}),
        },
    },
}

# METRICS AND TRACING
# ------------------------------------------------------------------------------
# https://prometheus.github.io/client_python/exporting/http/
# https://prometheus.github.io/client_python/multiprocess/
# Relay and workers serve their own /metrics on this port when set (one container each in
# docker-compose); in the devstack they share PROMETHEUS_MULTIPROC_DIR and the web serves them all.
METRICS_PORT = env.int("METRICS_PORT", default=0)
# https://opentelemetry.io/docs/languages/python/
# Real OpenTelemetry spans from the traceparent headers (needs the `otel` extras: `pip install ".[otel]"`).
TRACING_OTEL = env.bool("TRACING_OTEL", default=False)
# docs/observability.md (the ops page)
# Ops page: how many recent orders the per-hop latency chart shows.
OPS_RECENT_ORDERS = env.int("OPS_RECENT_ORDERS", default=30)
# Ops page: how long its history of figures is kept (each WSGI web process samples them once a second,
# one row a second in ops_sample); 0 turns the sampling off.
OPS_HISTORY_MINUTES = env.int("OPS_HISTORY_MINUTES", default=15)
