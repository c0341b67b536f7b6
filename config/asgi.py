"""The ASGI entry point; it refuses to start without a secret key (config.checks)."""

import os

from django.core.asgi import get_asgi_application

from .checks import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Without a key every request would fail: refuse to start, saying why.
require_secret_key()
application = get_asgi_application()
