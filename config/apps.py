"""The project package as an app: it registers the deployment checks and creates the
folders the app writes to at run time (settings.RUNTIME_DIRS), once Django starts."""

from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Configuration"

    def ready(self):
        from . import checks  # noqa: F401  (registering the checks is importing them)

        for folder in settings.RUNTIME_DIRS:
            Path(folder).mkdir(parents=True, exist_ok=True)
