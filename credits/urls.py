from django.urls import path

from . import urls_billing, urls_licenses, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("account/language/", views.set_language, name="set_language"),
    path("settings/", views.settings_org, name="settings_org"),
    path("settings/audit/", views.audit_log, name="settings_audit"),
    *urls_billing.urlpatterns,
    *urls_licenses.urlpatterns,
]
