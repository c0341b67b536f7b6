from django.urls import path
from django.utils.translation import gettext_lazy as _

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("account/language/", views.set_language, name="set_language"),
    path("billing/communications-credits/", views.not_available_billing, name="billing_credits"),
    path(
        "billing/licenses/",
        views.placeholder(
            _("Licenses"), _("Subscriptions and seats are not available yet."), "view_billing"
        ),
        name="billing_licenses",
    ),
    path(
        "billing/bills/",
        views.placeholder(
            _("Bills & payments"), _("Invoices are not available yet."), "view_billing"
        ),
        name="billing_bills",
    ),
    path(
        "users/",
        views.placeholder(
            _("Active users"), _("The user list is not available yet."), "view_people"
        ),
        name="users",
    ),
    path("settings/", views.settings_org, name="settings_org"),
    path("settings/audit/", views.audit_log, name="settings_audit"),
]
