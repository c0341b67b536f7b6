from django.utils.translation import gettext_lazy as _

from credits.views import placeholder

pstn_usage = placeholder(
    _("PSTN usage"), _("The PSTN usage report is not available yet."), "view_usage"
)
downloads = placeholder(_("Downloads"), _("Exports are not available yet."), "view_usage")
rates = placeholder(_("Rates"), _("The rate deck is not available yet."), "view_rates")
api_tokens = placeholder(
    _("API tokens"), _("API tokens are not available yet."), "manage_api_tokens"
)
