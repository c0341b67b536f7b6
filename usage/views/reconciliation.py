"""Reports > Reconciliation: Microsoft's reported charges beside this system's rating
(usage.reconciliation), and its Excel workbook.

Same access as the PSTN usage report: who reads the report reads the sums; the calls of
the "largest differences" list, like the report's call rows, need `view_call_rows`. The
workbook is small (rollup rows, not calls), so it is made in the request.
"""

from datetime import UTC

from babel.numbers import format_currency, format_decimal
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import get_language, to_locale
from django.utils.translation import gettext_lazy as _

from credits.forms.licenses import country_name
from credits.platform.access import permission
from credits.templatetags.dates import format_when
from credits.templatetags.money import format_rate

from .. import labels, masking, report
from ..reconciliation import (
    DEFAULT_GROUP,
    GROUPS,
    params_from_query,
    reconciliation_all_rows,
    reconciliation_for,
    reconciliation_top_calls,
    reconciliation_totals,
)
from ..reconciliation_export import reconciliation_workbook
from .report_range import sync_report_range
from .reports import RANGE_LABELS, _person_url

GROUP_LABELS = {"day": _("By day"), "user": _("By user"), "destination": _("By destination")}
MAX_ROWS_SHOWN = 100  # the user grouping can be long: the workbook has every row


def _locale() -> str:
    return to_locale(get_language() or "en")


def amount(value, currency: str) -> str:
    """An amount with its currency, to the cent or finer when Microsoft reported finer."""
    if value is None:
        return ""
    if not currency:
        return format_decimal(value, locale=_locale(), decimal_quantization=False)
    return format_currency(value, currency, locale=_locale(), decimal_quantization=False)


def _num(value) -> str:
    return format_decimal(value or 0, format="#,##0", locale=_locale())


def group_label(group: str, key) -> str:
    if group == "day":
        return key.isoformat()
    if group == "user":
        return key[2] or key[1] or str(_("Unknown user"))
    return country_name(key) if key else str(_("Unknown"))


def _sign(value) -> str:
    return "more" if value > 0 else "less" if value < 0 else "same"


def _row(group: str, g, currency: str, rows_allowed: bool) -> dict:
    return {
        "label": group_label(group, g.key),
        "upn": g.key[1] if group == "user" else "",
        "url": _person_url(g.key[0], g.key[1]) if group == "user" and rows_allowed else "",
        "currency": g.currency,
        "calls": _num(g.sums.calls),
        "unrated": _num(g.sums.unrated),
        "reported": amount(g.sums.reported, g.currency),
        "rated": amount(g.sums.rated, currency),
        "difference": amount(g.sums.difference, currency),
        "sign": _sign(g.sums.difference),
    }


def _top_row(t, currency: str, digits: int) -> dict:
    c = t.call
    _caller, callee = masking.mask_call_numbers(c.call_type, c.caller_number,
                                                c.callee_number, digits)
    return {
        "start": format_when(c.start_at),
        "user": c.user_display_name or c.upn, "upn": c.upn,
        "url": _person_url(c.person_id, c.upn),
        "call_type": labels.with_code(labels.call_type_name(c.call_type), c.call_type),
        "number": callee,
        "destination": country_name(c.destination_country) or c.destination_name,
        "duration": _num(c.duration_s),
        "ms_charge": amount(c.reported_charge, c.currency),
        "ms_fee": amount(c.reported_connection_charge, c.currency),
        "ms_currency": c.currency, "ms_capability": labels.with_code(
            labels.capability_name(c.reported_capability), c.reported_capability),
        "rate": format_rate(c.rate_per_minute, currency),
        "fee": amount(c.connection_fee, currency),
        "billable_minutes": format_decimal(report.minutes_of(c.billable_seconds),
                                           format="#,##0.0", locale=_locale()),
        "charged_to": report.charged_to_label(c.charged_to),
        "unrated_reason": labels.unrated_reason(c.unrated_reason),
        "charge": amount(c.charge, currency),
        "difference": amount(t.difference, currency),
        "sign": _sign(t.difference),
    }


@permission("view_usage")
def reconciliation(request):
    org = request.organization
    today = timezone.now().astimezone(UTC).date()
    filters, group, errors = params_from_query(request.GET, today=today)
    data = reconciliation_for(organization=org, filters=filters, group=group)
    currency = org.currency
    rows_allowed = request.person.has_perm("view_call_rows")
    digits = masking.digits_masked(org.country)
    top = reconciliation_top_calls(organization=org, filters=filters) if rows_allowed else []
    range_query = filters.query()
    context = {
        "filters": filters,
        "group": group,
        "errors": errors,
        "currency": currency,
        "range_labels": RANGE_LABELS,
        "tabs": [{"key": g, "label": GROUP_LABELS[g],
                  "url": "?" + urlencode({**range_query, "group": g}), "current": g == group}
                 for g in GROUPS],
        "group_label": GROUP_LABELS[group],
        "tiles": {
            "reported": amount(data.compared.reported, currency),
            "rated": amount(data.compared.rated, currency),
            "difference": amount(data.compared.difference, currency),
            "calls": data.compared.calls,
            "calls_text": _num(data.compared.calls),
            "sign": _sign(data.compared.difference),
        },
        "rows": [_row(group, g, currency, rows_allowed) for g in data.rows[:MAX_ROWS_SHOWN]],
        "row_count": len(data.rows),
        "rows_cut": len(data.rows) > MAX_ROWS_SHOWN,
        "apart": [_row(group, g, currency, rows_allowed) for g in data.apart[:MAX_ROWS_SHOWN]],
        "other_currencies": [
            {"currency": cur, "calls": s.calls, "calls_text": _num(s.calls),
             "reported": amount(s.reported, cur), "rated": amount(s.rated, currency)}
            for cur, s in data.other_currencies],
        "not_reported": {"calls": _num(data.not_reported.calls),
                         "rated": amount(data.not_reported.rated, currency),
                         "count": data.not_reported.calls},
        "rows_allowed": rows_allowed,
        "top": [_top_row(t, currency, digits) for t in top],
        "masked_digits": digits,
        "as_of": data.as_of,
        "export_url": reverse("reports_reconciliation_export") + "?" + urlencode(
            {**range_query, "group": group}),
        "usage_url": reverse("reports_pstn_usage") + "?" + urlencode(range_query),
    }
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    template = ("usage/reports/_reconciliation_body.html" if partial
                else "usage/reports/reconciliation.html")
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    query = {**range_query, "group": group} if group != DEFAULT_GROUP else range_query
    return sync_report_range(request, response, filters=filters, query=query)


@permission("view_usage")
def reconciliation_export(request):
    """The workbook of the range: one sheet per grouping, the rows apart, and (for who may
    read call rows) the largest differences."""
    org = request.organization
    today = timezone.now().astimezone(UTC).date()
    filters, _group, _errors = params_from_query(request.GET, today=today)
    rows_allowed = request.person.has_perm("view_call_rows")
    content = reconciliation_workbook(
        organization=org, filters=filters,
        groups=reconciliation_all_rows(organization=org, filters=filters),
        data=reconciliation_totals(organization=org, filters=filters),
        top=reconciliation_top_calls(organization=org, filters=filters)
        if rows_allowed else None,
        requested_by=request.person.upn, generated_at=timezone.now())
    name = f"Reconciliation_{filters.start.isoformat()}_{filters.end.isoformat()}.xlsx"
    response = HttpResponse(
        content,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response
