"""The PSTN usage report, its exports and the Downloads page (DESIGN.md section 9).

Filters live in the URL. With htmx the filter form, the sort links and the pager swap only
the report body (the request carries HX-Request and gets the partial template); without
JavaScript the same links and the form's GET load the whole page.
"""

from datetime import UTC

from babel.numbers import format_currency, format_decimal
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import get_language, to_locale
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from credits.platform.access import permission
from credits.platform.services import Actor, ServiceError
from credits.templatetags.money import format_money

from .. import masking, report
from ..exports import export_file, export_request
from ..models import ChargedTo, Export, ExportFormat, ExportStatus, ReportColumnPreference

# The table's columns: key, label, sort key (or ""), and whether shown by default.
COLUMNS = [
    ("usage_id", _("Usage ID"), "", False),
    ("call_id", _("Call ID"), "", False),
    ("conference_id", _("Conference ID"), "", False),
    ("user_location", _("User location"), "", False),
    ("aad_object_id", _("AAD object ID"), "", False),
    ("upn", _("UPN"), "", False),
    ("user", _("User display name"), "user", True),
    ("caller_id", _("Caller ID"), "", False),
    ("call_type", _("Call type"), "type", True),
    ("number_type", _("Number type"), "", False),
    ("context", _("Domestic/international"), "", True),
    ("destination", _("Destination dialed"), "destination", True),
    ("destination_number", _("Destination number"), "", True),
    ("start", _("Start time (UTC)"), "start", True),
    ("end", _("End time (UTC)"), "", False),
    ("duration", _("Duration (s)"), "duration", True),
    ("connection_fee", _("Connection fee"), "", False),
    ("charge", _("Charge"), "charge", True),
    ("currency", _("Currency"), "", False),
    ("capability", _("Capability"), "", True),
    ("charged_to", _("Charged to"), "", True),
    ("rate", _("Rate per minute"), "", False),
    ("billable_minutes", _("Billable minutes"), "", False),
    ("pool_minutes", _("Pool minutes"), "", False),
]
COLUMN_KEYS = [c[0] for c in COLUMNS]
DEFAULT_COLUMNS = [c[0] for c in COLUMNS if c[3]]
NUMERIC = {"duration", "connection_fee", "charge", "rate", "billable_minutes", "pool_minutes"}

CONTEXT_LABELS = {"domestic": _("Domestic"), "international": _("International")}
RANGE_LABELS = [("7", _("Last 7 days")), ("28", _("Last 28 days")), ("90", _("Last 90 days")),
                ("custom", _("Custom"))]


def _locale() -> str:
    return to_locale(get_language() or "en")


def _num(value, digits: int = 0) -> str:
    if value is None:
        return ""
    fmt = "#,##0" if not digits else "#,##0." + "0" * digits
    return format_decimal(value, format=fmt, locale=_locale())


def _rate(value, currency: str) -> str:
    if value is None:
        return ""
    return format_currency(value.normalize() if value else value, currency, locale=_locale(),
                           decimal_quantization=False)


def _person_url(person_id, upn: str) -> str:
    if person_id:
        try:
            return reverse("person_licenses", args=[person_id])
        except NoReverseMatch:
            pass
    return reverse("users") + "?" + urlencode({"q": upn}) if upn else ""


def _columns_for(person) -> list[str]:
    pref = ReportColumnPreference.objects.filter(person=person).values_list(
        "columns", flat=True).first()
    chosen = [c for c in (pref or []) if c in COLUMN_KEYS]
    return chosen or DEFAULT_COLUMNS


def _cells(call, columns, currency: str, digits: int, person_urls: dict) -> list[dict]:
    caller, callee = masking.mask_call_numbers(call.call_type, call.caller_number,
                                               call.callee_number, digits)
    values = {
        "usage_id": call.graph_id, "call_id": call.call_id,
        "conference_id": call.conference_id, "user_location": call.usage_country,
        "aad_object_id": call.user_id, "upn": call.upn,
        "user": call.user_display_name or call.upn, "caller_id": caller,
        "call_type": call.call_type, "number_type": call.inventory_type,
        "context": call.destination_context, "destination": call.destination_name,
        "destination_number": callee,
        "start": call.start_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "end": call.end_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        if call.end_at else "",
        "duration": _num(call.duration_s),
        "connection_fee": format_money(call.connection_fee, currency),
        "charge": format_money(call.charge, currency), "currency": currency,
        "capability": call.capability or call.reported_capability,
        "charged_to": report.charged_to_label(call.charged_to),
        "rate": _rate(call.rate_per_minute, currency),
        "billable_minutes": _num(report.minutes_of(call.billable_seconds), 1),
        "pool_minutes": _num(call.pool_minutes),
    }
    cells = []
    for key in columns:
        cell = {"value": values[key], "num": key in NUMERIC}
        if key == "user":
            url = person_urls.get((call.person_id, call.upn))
            if url is None:
                url = person_urls[(call.person_id, call.upn)] = _person_url(call.person_id,
                                                                             call.upn)
            cell["url"] = url
        cells.append(cell)
    return cells


def _chart(days, measure, label, fmt) -> dict:
    """Bars of one daily series as SVG geometry (attributes only: the CSP forbids inline
    styles). The viewBox scales to the card's width."""
    width, height, top = 720, 160, 8
    values = [measure(d.totals) for d in days]
    peak = max(values) if values else 0
    slot = width / max(len(values), 1)
    bar_w = max(slot * 0.7, 1)
    bars = []
    for i, (d, v) in enumerate(zip(days, values, strict=True)):
        h = 0 if not peak else (float(v) / float(peak)) * (height - top)
        bars.append({
            "x": round(i * slot + (slot - bar_w) / 2, 2), "y": round(height - h, 2),
            "w": round(bar_w, 2), "h": round(h, 2),
            "title": f"{d.day.isoformat()}: {fmt(v)}",
        })
    return {"label": label, "bars": bars, "peak": fmt(peak), "width": width,
            "height": height, "first": days[0].day if days else None,
            "last": days[-1].day if days else None,
            "table": [(d.day, fmt(v)) for d, v in zip(days, values, strict=True)]}


def _sort_links(filters, sort: str) -> dict:
    links = {}
    for key in report.SORTS:
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        target = (key if descending else f"-{key}") if current else f"-{key}"
        links[key] = {
            "url": "?" + urlencode(filters.query(sort=target)),
            "state": ("descending" if descending else "ascending") if current else "none",
        }
    return links


@permission("view_usage")
def pstn_usage(request):
    org = request.organization
    today = timezone.now().astimezone(UTC).date()
    filters, errors = report.filters_from_query(request.GET, today=today)
    match = report.user_match(organization=org, filters=filters)
    totals = report.report_totals(organization=org, filters=filters, match=match)
    days = report.report_daily(organization=org, filters=filters, match=match)
    currency = org.currency
    digits = masking.digits_masked(org.country)
    rows_allowed = request.person.has_perm("view_call_rows")
    sort = report.parse_sort(request.GET.get("sort", ""))
    columns = _columns_for(request.person) if rows_allowed else []
    page = None
    rows = []
    if rows_allowed and totals.calls:
        page = report.report_rows_page(
            organization=org, filters=filters, match=match, sort=sort,
            after=request.GET.get("after", ""), before=request.GET.get("before", ""))
        person_urls: dict = {}
        rows = [_cells(c, columns, currency, digits, person_urls) for c in page.rows]
    query = filters.query(sort=sort if sort != report.DEFAULT_SORT else "")
    sort_links = _sort_links(filters, sort)
    money = lambda v: format_money(v, currency)  # noqa: E731
    context = {
        "filters": filters,
        "errors": errors,
        "totals": totals,
        "tiles": {
            "calls": _num(totals.calls),
            "minutes": _num(totals.minutes, 1),
            "charge": money(totals.charge),
            "cost_per_minute": _rate(totals.cost_per_minute, currency)
            if totals.cost_per_minute is not None else "—",
        },
        "charts": [
            _chart(days, lambda t: t.calls, _("Calls per day"), _num),
            _chart(days, lambda t: t.minutes, _("Minutes per day"), lambda v: _num(v, 1)),
            _chart(days, lambda t: t.charge, _("Credits spent per day"), money),
        ],
        "spenders": [
            {"s": s, "url": _person_url(s.person_id, s.upn), "charge": money(s.totals.charge),
             "calls": _num(s.totals.calls)}
            for s in report.report_top_spenders(organization=org, filters=filters,
                                                match=match)
        ],
        "destinations": [
            {"d": d, "calls": _num(d.totals.calls), "minutes": _num(d.totals.minutes, 1),
             "charge": money(d.totals.charge)}
            for d in report.report_top_destinations(organization=org, filters=filters,
                                                    match=match)
        ],
        "rows_allowed": rows_allowed,
        "columns": [
            {"key": key, "label": label, "num": key in NUMERIC,
             "sort": sort_links[sort_key] if sort_key else None}
            for key, label, sort_key, _default in COLUMNS if key in columns
        ],
        "all_columns": [(c[0], c[1], c[0] in columns) for c in COLUMNS],
        "rows": rows,
        "page": page,
        "item_count": totals.calls,
        "sort": sort,
        "query": urlencode(query),
        "next_url": "?" + urlencode({**query, "after": page.next_cursor})
        if page and page.next_cursor else "",
        "prev_url": "?" + urlencode({**query, "before": page.prev_cursor})
        if page and page.prev_cursor else "",
        "first_url": "?" + urlencode(query),
        "range_labels": RANGE_LABELS,
        "call_types": report.CALL_TYPES,
        "contexts": list(CONTEXT_LABELS.items()),
        "charged_to_choices": [(v, ChargedTo(v).label) for v in report.CHARGED_TO],
        "capabilities": report.CAPABILITIES,
        "masked_digits": digits,
        "currency": currency,
        "as_of": totals.as_of,
        "export_formats": ExportFormat,
    }
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    template = "usage/reports/_pstn_usage_body.html" if partial else \
        "usage/reports/pstn_usage.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return target
    return fallback


@permission("view_usage")
@require_POST
def pstn_usage_columns(request):
    """Save the person's column choice (the "Choose columns" panel)."""
    chosen = [c for c in request.POST.getlist("columns") if c in COLUMN_KEYS]
    if request.POST.get("reset") or not chosen:
        chosen = DEFAULT_COLUMNS
    ReportColumnPreference.objects.update_or_create(
        person=request.person, defaults={"columns": chosen, "updated_at": timezone.now()})
    return redirect(_safe_next(request, reverse("reports_pstn_usage")))


@permission("view_call_rows")
@require_POST
def export_create(request):
    today = timezone.now().astimezone(UTC).date()
    filters, errors = report.filters_from_query(request.POST, today=today)
    if errors:
        # Exporting without a filter the person set would export more than they asked for.
        messages.error(request, _("Nothing was exported: some filters were not understood "
                                  "(%(fields)s).") % {"fields": ", ".join(sorted(errors))})
        return redirect(reverse("reports_pstn_usage") + "?" + urlencode(filters.query()))

    try:
        export = export_request(organization=request.organization, requester=request.person,
                                fmt=request.POST.get("format", ""), filters=filters,
                                actor=Actor.from_request(request))
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("reports_pstn_usage") + "?" + urlencode(filters.query()))
    messages.success(request, _("Your export has started. It will be listed here when "
                                "ready; the file is kept for 7 days."))
    return redirect(reverse("reports_downloads") + f"#export-{export.pk}")


def _exports_of(request):
    return Export.objects.filter(organization=request.organization,
                                 requester=request.person).order_by("-created_at", "-id")[:50]


@permission("view_usage")
def downloads(request):
    exports = list(_exports_of(request))
    now = timezone.now()
    items = [{
        "e": e,
        "filters": report.ReportFilters.from_dict(e.filters) if e.filters else None,
        "url": reverse("reports_download", args=[e.token])
        if e.status == ExportStatus.DONE and e.expires_at > now else "",
    } for e in exports]
    context = {"items": items, "polling": any(e.is_active for e in exports),
               "rows_allowed": request.person.has_perm("view_call_rows")}
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    template = "usage/reports/_downloads_table.html" if partial else \
        "usage/reports/downloads.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@permission("view_call_rows")
def download(request, token: str):
    """The file, to people of the export's organization who may read call rows. The token
    in the URL is random (32 bytes); another organization's token is a 404."""
    export = get_object_or_404(Export, organization=request.organization, token=token)

    path = export_file(export)
    if path is None:
        raise Http404
    content_type = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                    if export.format == ExportFormat.XLSX else "application/zip")
    response = FileResponse(path.open("rb"), as_attachment=True, filename=export.file_name,
                            content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response
