from django.urls import path

from . import views

urlpatterns = [
    path("reports/pstn-usage/", views.pstn_usage, name="reports_pstn_usage"),
    path("reports/downloads/", views.downloads, name="reports_downloads"),
    path("settings/rates/", views.rates, name="settings_rates"),
    path("settings/api-tokens/", views.api_tokens, name="settings_api_tokens"),
]
