"""Routes of the usage app: the PSTN usage report, its exports and imports, the minute
pools, and the rates and API tokens settings."""

from django.urls import path

from .views import (
    direct_routing,
    imports,
    microsoft,
    pools,
    rates,
    reconciliation,
    reports,
    tokens,
)

urlpatterns = [
    path("reports/pstn-usage/", reports.pstn_usage, name="reports_pstn_usage"),
    path("reports/pstn-usage/direct-routing/", direct_routing.direct_routing,
         name="reports_pstn_usage_direct_routing"),
    path("reports/pstn-usage/columns/", reports.pstn_usage_columns,
         name="reports_pstn_usage_columns"),
    path("reports/pstn-usage/export/", reports.export_create, name="reports_export_create"),
    path("reports/pstn-usage/import/", imports.pstn_import, name="reports_pstn_import"),
    path("reports/downloads/", reports.downloads, name="reports_downloads"),
    path("reports/downloads/<str:token>/", reports.download, name="reports_download"),
    path("reports/minute-pools/", pools.minute_pools, name="reports_minute_pools"),
    path("reports/reconciliation/", reconciliation.reconciliation,
         name="reports_reconciliation"),
    path("reports/reconciliation/export/", reconciliation.reconciliation_export,
         name="reports_reconciliation_export"),
    path("settings/rates/", rates.rates, name="settings_rates"),
    path("settings/rates/upload/", rates.rates_upload, name="settings_rates_upload"),
    path("settings/rates/download/", rates.rates_download, name="settings_rates_download"),
    path("settings/api-tokens/", tokens.api_tokens, name="settings_api_tokens"),
    path("settings/api-tokens/<int:pk>/revoke/", tokens.api_token_revoke_view,
         name="settings_api_token_revoke"),
    path("settings/microsoft/", microsoft.microsoft_connection, name="settings_microsoft"),
    path("settings/microsoft/test/", microsoft.microsoft_test, name="settings_microsoft_test"),
    path("settings/microsoft/pull/", microsoft.microsoft_pull_now,
         name="settings_microsoft_pull"),
    path("settings/microsoft/backfill/", microsoft.microsoft_backfill,
         name="settings_microsoft_backfill"),
    path("settings/microsoft/disconnect/", microsoft.microsoft_disconnect,
         name="settings_microsoft_disconnect"),
]
