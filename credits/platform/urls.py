"""Routes of the platform: home, health check, language, organization settings, audit log."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("account/language/", views.set_language, name="set_language"),
    path("settings/", views.settings_org, name="settings_org"),
    path("settings/audit/", views.audit_log, name="settings_audit"),
    path("settings/audit/export/", views.audit_log_export, name="settings_audit_export"),
]
