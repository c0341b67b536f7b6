"""The `credits` app: at start-up it wires its own after-commit hooks and subscribers."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = _("Credits")

    def ready(self):
        # Imported here: the tasks and services need the app registry to be ready.
        from . import subscribers, tasks
        from .events import event_recorded, subscribe
        from .services.ledger import auto_recharge_due

        event_recorded.connect(tasks.enqueue_dispatch, dispatch_uid="credits.dispatch")
        auto_recharge_due.connect(tasks.on_auto_recharge_due,
                                  dispatch_uid="credits.auto_recharge_check")
        subscribe("recharge_succeeded", subscribers.license_on_first_funding)
