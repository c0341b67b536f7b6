"""The `credits` app: at start-up it wires its own after-commit hooks, subscribers and the
home page's cards of its billing pages."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CreditsConfig(AppConfig):
    name = "credits"
    verbose_name = _("Credits")

    def ready(self):
        # Imported here: the tasks, services and views need the app registry to be ready.
        from . import audit_text, subscribers, tasks
        from .platform import audit_words, dbhealth, home
        from .platform.events import event_recorded, subscribe
        from .services.ledger import auto_recharge_due
        from .views import billing, licenses

        dbhealth.connect()
        event_recorded.connect(tasks.enqueue_dispatch, dispatch_uid="credits.dispatch")
        auto_recharge_due.connect(tasks.on_auto_recharge_due,
                                  dispatch_uid="credits.auto_recharge_check")
        subscribe("recharge_succeeded", subscribers.license_on_first_funding)
        home.CARD_PROVIDERS["billing_credits"] = billing.home_card
        home.BANNER_PROVIDERS["billing_credits"] = billing.home_banners
        home.CARD_PROVIDERS["users"] = licenses.home_card
        audit_words.register(action_name=audit_text.action_name,
                             change_lines=audit_text.change_lines)
