"""The usage app: rates, rating, call records, ingestion, reports and exports."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UsageConfig(AppConfig):
    name = "usage"
    verbose_name = _("Usage")

    def ready(self):
        from . import home

        home.register()
