"""Users and licenses pages. Owned by the licenses capability."""

from django.urls import path
from django.utils.translation import gettext_lazy as _

from . import views

urlpatterns = [
    path(
        "billing/licenses/",
        views.placeholder(
            _("Licenses"), _("Subscriptions and seats are not available yet."), "view_billing"
        ),
        name="billing_licenses",
    ),
    path(
        "reports/minute-pools/",
        views.placeholder(
            _("Minute pools"), _("The minute pools report is not available yet."), "view_usage"
        ),
        name="reports_minute_pools",
    ),
    path(
        "users/",
        views.placeholder(
            _("Active users"), _("The user list is not available yet."), "view_people"
        ),
        name="users",
    ),
]
