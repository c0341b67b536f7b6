"""URLs of the message center and the notification settings."""

from django.urls import path

from . import views

urlpatterns = [
    path("notifications/", views.message_center, name="notifications"),
    path("notifications/mark-all-read/", views.mark_all_read, name="notifications_mark_all_read"),
    path("notifications/<int:pk>/", views.notification_detail, name="notification_detail"),
    path(
        "notifications/<int:pk>/deliveries/<int:delivery_pk>/retry/",
        views.delivery_retry,
        name="notification_delivery_retry",
    ),
    path(
        "settings/notifications/", views.notification_settings, name="settings_notifications"
    ),
]
