from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.message_center, name="notifications"),
    path(
        "settings/notifications/", views.notification_settings, name="settings_notifications"
    ),
]
