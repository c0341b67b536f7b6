"""Settings for every environment, driven by environment variables (see README).

With no variable set, the app runs on its embedded defaults: SQLite and Celery's
filesystem broker under var/, the console e-mail backend and a local-memory cache.
"""

from datetime import timedelta
from decimal import Decimal

from celery.schedules import crontab

from .env import BASE_DIR, VAR_DIR, env

DEBUG = env.bool("DEBUG", default=False)
# `make run` on one's own machine: development keys, plain HTTP on 127.0.0.1 and e-mails
# in files under var/mail/, yet the app's own error pages (DEBUG only when asked for).
LOCAL_RUN = env.bool("LOCAL_RUN", default=False) or DEBUG

_DEV_SECRET = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
# Outside a local run a real key is required: `manage.py check --deploy`, `runserver` and
# the WSGI/ASGI entry points refuse to start without one (config/checks.py).
SECRET_KEY = env("SECRET_KEY", default=_DEV_SECRET if LOCAL_RUN else "")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config",  # first: it creates the run-time folders (the SQLite file's among them)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    # For its static files: /api/v1/docs serves Swagger UI from them, not from a CDN that
    # the Content-Security-Policy (and an offline machine) would refuse.
    "ninja",
    "credits",
    "usage",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The browser's middleware, skipped by requests under /api/ (credits.platform.middleware.
    # PagesOnly): Django's own, wrapped. Axes acts only on a locked-out sign-in.
    "credits.platform.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "credits.platform.middleware.CsrfViewMiddleware",
    "credits.platform.middleware.AuthenticationMiddleware",
    "credits.platform.middleware.TenantMiddleware",
    "credits.platform.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "credits.platform.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "credits.platform.context_processors.admin_center",
                "notifications.context_processors.unread",
            ],
        },
    },
]

# Folders the app writes to at run time; created when Django starts (config.apps), not
# when settings are imported.
RUNTIME_DIRS = [VAR_DIR]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web, the worker and beat share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Django's queries bind their parameters on the client and are never prepared; the few
    # hot statements that ask for it (usage.pg.prepared_cursor) are prepared by the server
    # on their 5th run on a connection. DATABASE_PREPARED_STATEMENTS=false turns that off
    # behind a transaction-mode pooler that cannot keep prepared statements.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None)
    # No JIT compilation: PostgreSQL compiles a statement whose estimated cost passes
    # jit_above_cost, and the batch statements of ingestion (a probe of the unique index per
    # id of a 10,000-row batch) pass it by estimate while running in milliseconds. Compiling
    # cost ~0.9 s each: an import batch's rollup statement went from 0.13 s to 1.0 s once
    # the table had statistics. No statement here runs long enough to repay compiling.
    _options = DATABASES["default"]["OPTIONS"]
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "credits.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# django-axes first: a locked-out username + address is refused before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Sign-in throttling: 5 failures for one username from one address lock that pair out for
# 15 minutes (another person, or the same person elsewhere, can still sign in).
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "credits.platform.errors.locked_out"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False  # no start-up banner in every command's output
# The number of reverse proxies in front of the app that append the client's address to
# X-Forwarded-For (README). 0: REMOTE_ADDR is the client and the header is ignored.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# The lockout is keyed on the client's address: behind a proxy, REMOTE_ADDR would be shared.
AXES_CLIENT_IP_CALLABLE = "credits.platform.client_ip.client_ip"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Cache and Celery -----------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    # A message a worker took but never acknowledged (the worker died) is delivered again
    # after this many seconds. Tests of a killed worker shorten it; then workers must also
    # look for such messages as often (kombu's default sweep runs every ~100 s).
    _visibility = env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility}
    if _visibility < 600:
        CELERY_BROKER_TRANSPORT_OPTIONS.update(unacked_restore_interval=1,
                                               unacked_restore_throttle=1)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # A host name, unused by this transport, spares kombu's "No hostname" warning.
    CELERY_BROKER_URL = "filesystem://localhost/"
    _broker_dir = VAR_DIR / "broker"
    RUNTIME_DIRS += [_broker_dir / _sub for _sub in ("queue", "processed", "control")]
    # Producers and consumers must share one folder for the filesystem transport.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Broadcast (control) messages: kept under var/ rather than the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The schedule lives in code; exactly one beat process runs it.
CELERY_BEAT_SCHEDULE = {
    "credits-auto-recharge-sweep": {
        "task": "credits.tasks.auto_recharge_sweep",
        "schedule": 300.0,
    },
    "credits-refund-sweep": {
        "task": "credits.tasks.refund_sweep",
        "schedule": 300.0,
    },
    "credits-expire-funds": {
        "task": "credits.tasks.expire_funds",
        "schedule": crontab(minute=15, hour=0),
    },
    "credits-dispatch-events": {
        "task": "credits.tasks.dispatch_pending_events",
        "schedule": 60.0,
    },
    "notifications-retry-stuck-deliveries": {
        "task": "notifications.tasks.retry_stuck_deliveries",
        "schedule": 60.0,
    },
    "usage-expire-exports": {
        "task": "usage.tasks.expire_exports",
        "schedule": crontab(minute=30, hour=1),
    },
    "credits-sweep-people-imports": {
        "task": "credits.tasks.sweep_people_imports",
        "schedule": 300.0,
    },
    "usage-sweep-imports": {
        "task": "usage.tasks.sweep_imports",
        "schedule": 300.0,
    },
    # Pulls Microsoft Graph call records for every connected organization.
    "usage-pull-microsoft": {
        "task": "usage.tasks.pull_microsoft_all",
        "schedule": float(env.int("MS_PULL_INTERVAL_SECONDS", default=15 * 60)),
    },
}

# Requests per minute per API token, counted in the shared cache (0: no limit).
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=6000)
# Rate decks kept parsed per process (usage.selectors): call authorization prices from
# them, so this should cover the organizations that place calls; past it, a deck is read
# and parsed again when its organization's turn comes.
RATE_DECK_CACHE_SIZE = env.int("RATE_DECK_CACHE_SIZE", default=64)

# --- E-mail -----------------------------------------------------------------------------------
# On one's own machine, each e-mail is a file under var/mail/ (the message center shows the
# same notifications), not pages of text in the console.
MAIL_DIR = VAR_DIR / "mail"
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
if LOCAL_RUN and "EMAIL_URL" not in env.ENVIRON:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(MAIL_DIR)
    RUNTIME_DIRS.append(MAIL_DIR)
# A delivery holds its row lock while it talks to the SMTP server: never wait forever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Credits Center <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Absolute links in e-mails and exports.
# By default the address `make run` serves (WEB_PORT, 8000 unless set).
SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{env.int('WEB_PORT', default=8000)}")

# --- Payments ---------------------------------------------------------------------------------
# The payment gateway (a class implementing credits.payments.base.PaymentGateway).
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="credits.payments.simulated.SimulatedGateway")
# Test-only fault injection of the simulated gateway (credits/payments/simulated.py), off
# when empty:
# e.g. "seed=7,timeout=0.15,error=0.15,decline=0.15" (probabilities per charge call).
SIMULATED_GATEWAY_FAULTS = env("SIMULATED_GATEWAY_FAULTS", default="")

# --- Invoices ---------------------------------------------------------------------------------
# The seller on every invoice: the operator of this deployment.
INVOICE_SELLER_NAME = env("INVOICE_SELLER_NAME", default="Credits Center Demo Ltd")
INVOICE_SELLER_ADDRESS = env(
    "INVOICE_SELLER_ADDRESS", default="1 Example Street\n75001 Paris\nFrance"
).replace("\\n", "\n")
INVOICE_SELLER_TAX_ID = env("INVOICE_SELLER_TAX_ID", default="FR00000000000")
# Tax included in the amounts charged, in percent (0: no tax line is charged).
INVOICE_TAX_RATE = Decimal(env("INVOICE_TAX_RATE", default="0"))
INVOICE_TAX_LABEL = env("INVOICE_TAX_LABEL", default="VAT")

# --- Microsoft Graph connector (usage.microsoft) ---------------------------------------------
# Fernet key(s) that encrypt connection secrets at rest; several, comma-separated, to rotate
# (the first encrypts). Required as soon as an organization connects; under DEBUG a fixed
# development key stands in, so that `make run`'s demo works on a fresh machine.
_DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE="
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY",
                           default=_DEV_FIELD_KEY if LOCAL_RUN else "")
# Replace the national cloud's sign-in and Graph addresses (tests, proxies), without a path.
MS_LOGIN_BASE_URL = env("MS_LOGIN_BASE_URL", default="")
MS_GRAPH_BASE_URL = env("MS_GRAPH_BASE_URL", default="")
# Seconds of every HTTP request to Microsoft (connect, read).
MS_HTTP_TIMEOUT = env.float("MS_HTTP_TIMEOUT", default=30.0)
# Each window re-reads this much of the previous one, for rows Microsoft adds late.
MS_PULL_OVERLAP_MINUTES = env.int("MS_PULL_OVERLAP_MINUTES", default=60)
# How far back the first pull of a new connection reaches.
MS_PULL_INITIAL_DAYS = env.int("MS_PULL_INITIAL_DAYS", default=30)
# Tries of one page on 429, 503 and network errors, and the longest wait between two.
MS_PULL_MAX_RETRIES = env.int("MS_PULL_MAX_RETRIES", default=6)
MS_PULL_MAX_BACKOFF_SECONDS = env.int("MS_PULL_MAX_BACKOFF_SECONDS", default=120)
# Failed pulls in a row before the connector_failing notification and the home banner.
MS_PULL_FAILURES_BEFORE_ALERT = env.int("MS_PULL_FAILURES_BEFORE_ALERT", default=3)

# --- I18N -----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
# Each language by its own name, as language menus show them.
LANGUAGES = [("en", "English"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
RUNTIME_DIRS.append(STATIC_ROOT)  # WhiteNoise warns on every start when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not LOCAL_RUN and env.bool("STATIC_MANIFEST", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Without collectstatic (make run, tests) WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = True
EXPORT_DIR = env.path("EXPORT_DIR", default=VAR_DIR / "exports")
# Uploaded call files waiting for (or in) their background import; private, never served.
IMPORT_DIR = env.path("IMPORT_DIR", default=VAR_DIR / "imports")

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not LOCAL_RUN:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# /healthz must answer plain HTTP probes from a load balancer.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Django's W003 ("CsrfViewMiddleware is not in your MIDDLEWARE") matches the dotted path
# only, and MIDDLEWARE lists the platform's subclass, which enforces CSRF on every request
# outside /api/. config.checks (E002, and W016 for the cookie) checks for any subclass.
SILENCED_SYSTEM_CHECKS = ["security.W003"]

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
