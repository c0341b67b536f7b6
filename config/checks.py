"""System checks of the deployment settings (`manage.py check`), also run by the WSGI entry
point so that a misconfigured server refuses to start instead of answering every request
with an error."""

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


@checks.register(checks.Tags.security)
def check_secret_key(app_configs=None, **kwargs):
    if secret_key_missing():
        return [checks.Error(MISSING_SECRET_KEY, id="config.E001")]
    return []


def require_secret_key() -> None:
    if secret_key_missing():
        raise ImproperlyConfigured(MISSING_SECRET_KEY)
