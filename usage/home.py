"""The "Usage this month" card of the home page, registered in credits.platform.home's provider
registry from UsageConfig.ready() (credits never imports usage)."""

from datetime import timedelta

from babel.numbers import format_decimal
from django.utils import timezone
from django.utils.translation import get_language, ngettext, to_locale
from django.utils.translation import gettext as _

from credits.platform import home
from credits.templatetags.money import format_money
from credits.templatetags.numbers import num

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
            "calls": num(totals.calls),
            "spent": format_money(totals.charge, request.organization.currency),
        },
        "lines": [ngettext("Last 7 days: %(calls)s call, %(spent)s",
                           "Last 7 days: %(calls)s calls, %(spent)s", week.calls) % {
            "calls": num(week.calls),
            "spent": format_money(week.charge, request.organization.currency),
        }],
        "link_label": _("Open the PSTN usage report"),
        "sparkline": _spend_sparkline(request.organization, filters),
    }


def _spend_sparkline(organization, filters) -> dict:
    """Credits spent per day since the 1st, as the points of a small SVG line (the CSP
    forbids inline styles: geometry only)."""
    days = report.report_daily(organization=organization, filters=filters, match=None)
    width, height, pad = 240, 40, 2
    values = [float(d.totals.charge) for d in days]
    peak = max(values, default=0) or 1
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - v / peak * (height - 2 * pad):.1f}"
        for i, v in enumerate(values))
    currency = organization.currency
    return {"points": points, "width": width, "height": height,
            "label": _("Credits spent per day since the 1st: %(first)s to %(last)s, "
                       "peak %(peak)s") % {
                "first": days[0].day.isoformat(), "last": days[-1].day.isoformat(),
                "peak": format_money(max(d.totals.charge for d in days), currency)}}


def connector_banner(request) -> str:
    """A red banner while the Microsoft connector fails (MS_PULL_FAILURES_BEFORE_ALERT in a
    row): the usage the page shows is not complete."""
    from django.template.loader import render_to_string

    from .microsoft.pull import connection_of, is_failing

    connection = connection_of(organization=request.organization)
    if not is_failing(connection):
        return ""
    return render_to_string("usage/_microsoft_banner.html", {"connection": connection},
                            request=request)


def register() -> None:
    home.CARD_PROVIDERS["reports_pstn_usage"] = usage_card
    home.BANNER_PROVIDERS["reports_pstn_usage"] = connector_banner
