"""The "Usage this month" card of the home page, registered in credits.platform.home's provider
registry from UsageConfig.ready() (credits never imports usage)."""

from datetime import timedelta

from babel.numbers import format_decimal
from django.utils import timezone
from django.utils.translation import get_language, ngettext, to_locale
from django.utils.translation import gettext as _

from credits.platform import home
from credits.templatetags.money import format_money

from . import report


def usage_card(request) -> dict:
    today = timezone.now().date()
    filters = report.ReportFilters(start=today.replace(day=1), end=today, range="custom")
    totals = report.report_totals(organization=request.organization, filters=filters,
                                  match=None)
    if not totals.calls:
        return {"text": _("No calls this month yet.")}
    minutes = int(totals.minutes)
    last_week = today - timedelta(days=6)
    week = report.report_totals(
        organization=request.organization,
        filters=report.ReportFilters(start=last_week, end=today, range="7"), match=None,
    )
    return {
        "figure": _("%(minutes)s min") % {
            "minutes": format_decimal(minutes, locale=to_locale(get_language() or "en"))
        },
        "text": ngettext(
            "%(calls)s call, %(spent)s of credits spent since the 1st.",
            "%(calls)s calls, %(spent)s of credits spent since the 1st.",
            totals.calls,
        ) % {
            "calls": totals.calls,
            "spent": format_money(totals.charge, request.organization.currency),
        },
        "lines": [ngettext("Last 7 days: %(calls)s call, %(spent)s",
                           "Last 7 days: %(calls)s calls, %(spent)s", week.calls) % {
            "calls": week.calls,
            "spent": format_money(week.charge, request.organization.currency),
        }],
        "link_label": _("Open the PSTN usage report"),
    }


def register() -> None:
    home.CARD_PROVIDERS["reports_pstn_usage"] = usage_card
