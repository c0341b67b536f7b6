"""Routes of the PSTN usage report, its exports and the Downloads page."""

from django.urls import path

from . import views_reports as views

urlpatterns = [
    path("reports/pstn-usage/", views.pstn_usage, name="reports_pstn_usage"),
    path("reports/pstn-usage/columns/", views.pstn_usage_columns,
         name="reports_pstn_usage_columns"),
    path("reports/pstn-usage/export/", views.export_create, name="reports_export_create"),
    path("reports/downloads/", views.downloads, name="reports_downloads"),
    path("reports/downloads/<str:token>/", views.download, name="reports_download"),
]
