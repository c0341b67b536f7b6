"""Billing pages (Communications Credits, bills & payments). Owned by the billing capability."""

from django.urls import path
from django.utils.translation import gettext_lazy as _

from . import views

urlpatterns = [
    path("billing/communications-credits/", views.not_available_billing, name="billing_credits"),
    path(
        "billing/bills/",
        views.placeholder(
            _("Bills & payments"), _("Invoices are not available yet."), "view_billing"
        ),
        name="billing_bills",
    ),
]
