"""One settings module, driven by environment variables with embedded defaults.

Embedded default (nothing set): SQLite, in-memory channel layer, Celery tasks run by the
in-process scheduler of `manage.py serve`. With DATABASE_URL and REDIS_URL set: PostgreSQL,
the Redis channel layer and a Redis Celery broker.
"""

import os
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("SECRET_KEY", "embedded-default-not-secret-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "*").split(",")
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000").split(",") if o
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "exchange",
    "accounts",
    "trading",
    "lending",
    "settlement",
    "ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Failed API signatures count against the per-IP rate limit (exchange/throttling.py).
    "exchange.throttling.FailedSignatureMiddleware",
]

ROOT_URLCONF = "exchange.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "exchange.asgi.application"

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
                "accounts.context_processors.exchange",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
# DB_CONN_MAX_AGE: 0 for daphne web workers (under ASGI each request thread would keep a
# connection of its own; bin/run-prod sets it), 60 s elsewhere.
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60"))
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Exact decimals on SQLite: see exchange/sqlite/base.py.
    DATABASES["default"]["ENGINE"] = "exchange.sqlite"
    (BASE_DIR / "var").mkdir(exist_ok=True)
    # SQLite serialises writers; take the write lock when a transaction begins (so a
    # read-modify-write of a balance cannot lose an update) and wait for it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    # Tests on SQLite use a file (not shared-cache memory, whose table locks do not wait),
    # so tests with threads behave as the embedded server does.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # One test database per test process (parallel runs must not share one).
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis' layer, sending in one round trip (exchange/channel_layer.py).
            "BACKEND": "exchange.channel_layer.OneTripRedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNEL_PREFIX", "asgi"),
                "expiry": 30,
                # Messages a channel holds (engine commands, a web process's replies) before
                # a send fails with ChannelFull (the callers get SERVER_ERROR).
                "capacity": int(os.environ.get("CHANNEL_CAPACITY", "5000")),
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # Shared by every web worker: seen signatures (replay protection), rate-limit counters.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "exchange",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# The beat schedule: each app adds its periodic jobs here (name -> task, schedule seconds).
CELERY_BEAT_SCHEDULE: dict = {
    "check-ledger": {"task": "accounts.check_ledger", "schedule": 600.0},
    # Engine books against the database's open orders, and the ledger (trading/reconcile.py).
    "reconcile": {"task": "trading.reconcile", "schedule": 300.0},
    # Accrues every hour that has ended (on the hour; a missed hour is caught up).
    "accrue-interest": {"task": "lending.accrue_interest", "schedule": 60.0},
    # Stablecoin boost: each ended hour into pending; each ended month paid once.
    "accrue-boost": {"task": "lending.accrue_boost", "schedule": 60.0},
    "pay-boost": {"task": "lending.pay_boost", "schedule": 600.0},
    # SOL staking: hourly samples of lent SOL; each ended epoch paid once.
    "sol-staking": {"task": "lending.staking", "schedule": 60.0},
    "reconcile-lending": {"task": "lending.reconcile", "schedule": 10.0},
    # Interest-bearing perps: continuous realization, hourly interest on unrealized PnL.
    "realize-pnl": {"task": "settlement.realize_pnl", "schedule": 10.0},
    "pnl-interest": {"task": "settlement.pnl_interest", "schedule": 60.0},
    "funding": {"task": "settlement.funding", "schedule": 60.0},
    # A living demo market (trading/demo.py): quotes around the index and a little taker flow.
    "demo-market-makers": {"task": "trading.demo_market_makers", "schedule": 3.0},
}
# The one-second jobs: index per asset, premium sample and mark per perp, index/mark klines;
# then liquidation against the new marks. The production topology runs them in the
# liquidation/risk worker (`manage.py riskworker`, settlement/risk_worker.py: in order, off
# Celery); RISK_WORKER says it runs, and beat leaves them out. Otherwise beat (and the
# embedded default's PeriodicJobs) runs them.
RISK_WORKER = env_bool("RISK_WORKER", False)
RISK_TICK_SECONDS = float(os.environ.get("RISK_TICK_SECONDS", "1"))
if not RISK_TICK_SECONDS > 0:
    raise ValueError(f"RISK_TICK_SECONDS must be positive, not {RISK_TICK_SECONDS}")
RISK_JOBS = {
    "update-prices": {"task": "settlement.update_prices", "schedule": RISK_TICK_SECONDS},
    "liquidate": {"task": "settlement.liquidate", "schedule": RISK_TICK_SECONDS},
}
if not RISK_WORKER:
    CELERY_BEAT_SCHEDULE.update(RISK_JOBS)
# On in the embedded default, off under pytest (tests that want it set the variable).
DEMO_MARKET_MAKERS = env_bool("DEMO_MARKET_MAKERS", "pytest" not in sys.modules)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "account"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "accounts.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # Rate limits (exchange/throttling.py): signed requests per API key, all per client IP.
    "DEFAULT_THROTTLE_CLASSES": [
        "exchange.throttling.ApiKeyRateThrottle",
        "exchange.throttling.IpRateThrottle",
    ],
}
# Requests per second/minute ("50/s", "600/m"; "" turns a limit off), counted in the cache
# (Redis with REDIS_URL: shared by every web worker). TRUSTED_PROXIES: how many proxies in
# front of us append to X-Forwarded-For (0: the client IP is REMOTE_ADDR, the header ignored).
RATE_LIMITS = {
    "PER_KEY": os.environ.get("RATE_LIMIT_PER_KEY", "50/s"),
    "PER_IP": os.environ.get("RATE_LIMIT_PER_IP", "100/s"),
    "TRUSTED_PROXIES": int(os.environ.get("RATE_LIMIT_TRUSTED_PROXIES", "0")),
    "CACHE": "default",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Exchange API (Backpack-compatible)",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Response bodies and refusals of the operations (the views have no serializers).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exchange.schema.describe",
    ],
}
# Requests bodies above this size are refused (Backpack's own limit is of this order).
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# The engine worker. Embedded default: a thread of the web process. With REDIS_URL: the
# `runworker engine` process, reached over the channel layer (exchange/order_client.py:
# ChannelEngineClient with fewer Redis round trips for the async order views).
ENGINE_CLIENT = os.environ.get(
    "ENGINE_CLIENT",
    "exchange.order_client.FastEngineClient"
    if REDIS_URL
    else "exchange.engine.local.LocalEngineClient",
)
ENGINE_CHANNEL = os.environ.get("ENGINE_CHANNEL", "engine")
ENGINE_MARKETS = [m for m in os.environ.get("ENGINE_MARKETS", "").split(",") if m]
# Engine shards: "channel=SYM,SYM;channel=SYM". The web side sends a command to the channel
# of its symbol; other markets (and commands without a symbol) go to ENGINE_CHANNEL.
ENGINE_SHARDS = {
    channel.strip(): [s.strip() for s in symbols.split(",") if s.strip()]
    for channel, _, symbols in (
        part.partition("=") for part in os.environ.get("ENGINE_SHARDS", "").split(";") if part
    )
}
ENGINE_BATCH_SIZE = int(os.environ.get("ENGINE_BATCH_SIZE", "500"))
# Group commit: once a batch's first command is in, the engine takes in more for as long as
# more keep arriving, checking every ENGINE_BATCH_LINGER_SECONDS / 4, at most this long in
# all (then a batch's fixed costs, its view read and its commit, are shared by more orders).
ENGINE_BATCH_LINGER_SECONDS = float(os.environ.get("ENGINE_BATCH_LINGER_SECONDS", "0.001"))
ENGINE_TIMEOUT_SECONDS = float(os.environ.get("ENGINE_TIMEOUT_SECONDS", "10"))

# The margin check of a new borrow (the composition root knows every position).
LENDING_MARGIN_CHECK = "exchange.margin.check_borrow"

# Exchange behaviour.
EXCHANGE_TESTNET = env_bool("EXCHANGE_TESTNET", True)
# Seed of the deterministic deposit addresses (simulated chains).
DEPOSIT_ADDRESS_SEED = os.environ.get("DEPOSIT_ADDRESS_SEED", "simulated-chains")
# Signed requests: X-Window default and maximum (ms).
SIGNATURE_DEFAULT_WINDOW_MS = 5000
SIGNATURE_MAX_WINDOW_MS = 60000
# A timestamp this far in the future (ms) is refused as well.
SIGNATURE_FUTURE_TOLERANCE_MS = int(os.environ.get("SIGNATURE_FUTURE_TOLERANCE_MS", "1000"))
# API keys (with their account) are cached per process this long; a key saved (revoked) is
# dropped at once in the process that saved it, other processes notice within this time.
API_KEY_CACHE_SECONDS = float(os.environ.get("API_KEY_CACHE_SECONDS", "5"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
