"""The WSGI entry point (gunicorn config.wsgi); it refuses to start without a secret key."""

import os

from django.core.wsgi import get_wsgi_application

from .checks import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Without a key every request would fail: refuse to start, saying why.
require_secret_key()
application = get_wsgi_application()
