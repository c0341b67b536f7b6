from django.urls import path

from . import urls_reports, views

urlpatterns = [
    *urls_reports.urlpatterns,
    path("reports/pstn-usage/import/", views.pstn_import, name="reports_pstn_import"),
    path("settings/rates/", views.rates, name="settings_rates"),
    path("settings/rates/upload/", views.rates_upload, name="settings_rates_upload"),
    path("settings/rates/download/", views.rates_download, name="settings_rates_download"),
    path("settings/api-tokens/", views.api_tokens, name="settings_api_tokens"),
    path("settings/api-tokens/<int:pk>/revoke/", views.api_token_revoke_view,
         name="settings_api_token_revoke"),
]
