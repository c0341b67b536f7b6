from django.utils.translation import gettext_lazy as _

from credits.views import placeholder

message_center = placeholder(_("Message center"), _("Notifications are not available yet."))
notification_settings = placeholder(
    _("Notification settings"),
    _("Notification settings are not available yet."),
    "view_settings",
)
