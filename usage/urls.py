"""Routes of the usage app: the PSTN usage report, its exports and imports, the minute
pools, and the rates and API tokens settings."""

from django.urls import path

from .views import imports, pools, rates, reports, tokens

urlpatterns = [
    path("reports/pstn-usage/", reports.pstn_usage, name="reports_pstn_usage"),
    path("reports/pstn-usage/columns/", reports.pstn_usage_columns,
         name="reports_pstn_usage_columns"),
    path("reports/pstn-usage/export/", reports.export_create, name="reports_export_create"),
    path("reports/pstn-usage/import/", imports.pstn_import, name="reports_pstn_import"),
    path("reports/downloads/", reports.downloads, name="reports_downloads"),
    path("reports/downloads/<str:token>/", reports.download, name="reports_download"),
    path("reports/minute-pools/", pools.minute_pools, name="reports_minute_pools"),
    path("settings/rates/", rates.rates, name="settings_rates"),
    path("settings/rates/upload/", rates.rates_upload, name="settings_rates_upload"),
    path("settings/rates/download/", rates.rates_download, name="settings_rates_download"),
    path("settings/api-tokens/", tokens.api_tokens, name="settings_api_tokens"),
    path("settings/api-tokens/<int:pk>/revoke/", tokens.api_token_revoke_view,
         name="settings_api_token_revoke"),
]
