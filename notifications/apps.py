"""The notifications app: subscribes to the domain events of credits and fills the home
page's message center card."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        # credits emits the events and never imports this app: the subscription is made here.
        from credits.platform import events

        from . import catalog, home, services

        for name in catalog.EVENTS:
            events.subscribe(name, services.notification_handle_event)
        home.register()
