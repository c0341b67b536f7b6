"""System checks of the deployment settings (`manage.py check --deploy`). The secret key is
also required by `runserver` and the WSGI and ASGI entry points, so that a misconfigured
server refuses to start instead of answering every request with an error."""

import sys
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

MISSING_SECRET_KEY = (
    "SECRET_KEY is not set: with DEBUG off, Credits Center needs a secret key to sign "
    "sessions and forms. Set the SECRET_KEY environment variable to a long random value "
    "(or DEBUG=true for development)."
)


def secret_key_missing() -> bool:
    try:
        return not settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to hand out an empty key
        return True


def _manage_command() -> str | None:
    """The command of `manage.py COMMAND` (or django-admin) running now, else None."""
    if len(sys.argv) > 1 and Path(sys.argv[0]).name in ("manage.py", "django-admin"):
        return sys.argv[1]
    return None


def _secret_key_errors() -> list:
    return [checks.Error(MISSING_SECRET_KEY, id="config.E001")] if secret_key_missing() else []


@checks.register(checks.Tags.security)
def check_secret_key_to_serve(app_configs=None, **kwargs):
    """`runserver` would answer every signed request with an error: it refuses to start.
    The WSGI and ASGI entry points refuse too (require_secret_key). Other commands sign
    nothing (check, migrate, the imports...): a checkout is checked, and a release
    migrates, before its key is in place."""
    return _secret_key_errors() if _manage_command() == "runserver" else []


@checks.register(checks.Tags.security, deploy=True)
def check_secret_key(app_configs=None, **kwargs):
    """`manage.py check --deploy` vouches for a deployment: the key must be set."""
    return _secret_key_errors()


def require_secret_key() -> None:
    if secret_key_missing():
        raise ImproperlyConfigured(MISSING_SECRET_KEY)


def _csrf_middleware() -> bool:
    """Django's CsrfViewMiddleware, or a subclass of it (credits.platform.middleware wraps
    it to skip /api/, whose bearer token no browser sends on its own), is installed."""
    from django.middleware.csrf import CsrfViewMiddleware
    from django.utils.module_loading import import_string

    for path in settings.MIDDLEWARE:
        try:
            middleware = import_string(path)
        except ImportError:
            continue
        if isinstance(middleware, type) and issubclass(middleware, CsrfViewMiddleware):
            return True
    return False


# Django's security.W003 and W016 look for Django's CsrfViewMiddleware by its dotted path,
# so they miss the platform's subclass (W003 is silenced in config/settings.py). These two
# check the same things for any subclass.
@checks.register(checks.Tags.security)
def check_csrf_middleware(app_configs=None, **kwargs):
    if _csrf_middleware():
        return []
    return [checks.Error(
        "No CSRF middleware: MIDDLEWARE lists neither django.middleware.csrf."
        "CsrfViewMiddleware nor a subclass of it (credits.platform.middleware."
        "CsrfViewMiddleware); forms could be posted from other sites.", id="config.E002")]


@checks.register(checks.Tags.security, deploy=True)
def check_csrf_cookie_secure(app_configs=None, **kwargs):
    if _csrf_middleware() and not settings.CSRF_USE_SESSIONS and \
            not settings.CSRF_COOKIE_SECURE:
        return [checks.Warning(
            "CSRF_COOKIE_SECURE is off: the CSRF cookie would be sent over plain HTTP. Set "
            "SECURE_COOKIES=true (the default) behind HTTPS.", id="config.W016")]
    return []
