"""The PSTN usage report, its exports and the Downloads page (DESIGN.md section 9).

Filters live in the URL. With htmx the filter form, the sort links and the pager swap only
the report body (the request carries HX-Request and gets the partial template); without
JavaScript the same links and the form's GET load the whole page.
"""

from datetime import UTC

from babel.numbers import format_decimal
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

from credits.models import Person
from credits.platform.access import permission
from credits.platform.services import Actor, ServiceError
from credits.selectors.spend_limits import spend_overview
from credits.templatetags.dates import format_when
from credits.templatetags.money import format_money, format_rate

from .. import charts, labels, masking, report
from ..exports import export_file, export_request
from ..models import ChargedTo, Export, ExportFormat, ExportStatus, ReportColumnPreference
from ..places import country_name, destination_label, localized_name
from .report_range import sync_report_range

# The table's columns: key, label, sort key (or ""), and whether shown by default. The
# default ones fit a 1366 px screen with Charge in view; the rest are in "Choose columns".
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
    ("context", _("Domestic/international"), "", False),
    ("destination", _("Destination dialed"), "destination", True),
    ("destination_number", _("Destination number"), "", False),
    ("from_country", _("From country or region"), "", False),
    ("start", _("Start time (UTC)"), "start", True),
    ("end", _("End time (UTC)"), "", False),
    ("duration", _("Duration (s)"), "duration", True),
    ("connection_fee", _("Connection fee"), "", False),
    ("charge", _("Charge"), "charge", True),
    ("currency", _("Currency"), "", False),
    ("capability", _("Capability"), "", False),
    ("charged_to", _("Charged to"), "", True),
    ("rate", _("Rate per minute"), "", False),
    ("billable_minutes", _("Billable minutes"), "", False),
    ("pool_minutes", _("Pool minutes"), "", False),
]
COLUMN_KEYS = [c[0] for c in COLUMNS]
DEFAULT_COLUMNS = [c[0] for c in COLUMNS if c[3]]
NUMERIC = {"duration", "connection_fee", "charge", "rate", "billable_minutes", "pool_minutes"}
# Names that may wrap in the table (the other cells keep one line).
WORDS = {"call_type", "capability", "charged_to", "destination", "from_country"}

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
    return format_rate(value, currency)


def _person_url(person_id, upn: str) -> str:
    if person_id:
        try:
            return reverse("person_licenses", args=[person_id])
        except NoReverseMatch:
            pass
    return reverse("users") + "?" + urlencode({"q": upn}) if upn else ""


def _report_url(filters, user: str) -> str:
    """The report filtered to one person's calls (the other filters kept)."""
    return reverse("reports_pstn_usage") + "?" + urlencode(filters.query(user=user))


def _columns_for(person) -> list[str]:
    pref = ReportColumnPreference.objects.filter(person=person).values_list(
        "columns", flat=True).first()
    chosen = [c for c in (pref or []) if c in COLUMN_KEYS]
    return chosen or DEFAULT_COLUMNS


def _cells(call, columns, currency: str, digits: int, filters,
           locale: str = "en") -> list[dict]:
    caller, callee = masking.mask_call_numbers(call.call_type, call.caller_number,
                                               call.callee_number, digits)
    values = {
        "usage_id": call.graph_id, "call_id": call.call_id,
        "conference_id": call.conference_id, "user_location": call.usage_country,
        "aad_object_id": call.user_id, "upn": call.upn,
        "user": call.user_display_name or call.upn, "caller_id": caller,
        "call_type": labels.call_type_name(call.call_type),
        "number_type": call.inventory_type,
        "context": call.destination_context,
        "destination": destination_label(call.destination_name, call.destination_country,
                                         locale),
        "destination_number": callee,
        "from_country": country_name(call.other_party_country, locale),
        "start": format_when(call.start_at),
        "end": format_when(call.end_at) if call.end_at else "",
        "duration": _num(call.duration_s),
        "connection_fee": format_money(call.connection_fee, currency),
        "charge": format_money(call.charge, currency), "currency": currency,
        "capability": labels.capability_name(call.capability or call.reported_capability),
        "charged_to": report.charged_to_label(call.charged_to),
        "rate": _rate(call.rate_per_minute, currency),
        "billable_minutes": _num(report.minutes_of(call.billable_seconds), 1),
        "pool_minutes": _num(call.pool_minutes),
    }
    cells = []
    for key in columns:
        cell = {"value": values[key], "num": key in NUMERIC, "words": key in WORDS}
        if key in ("call_type", "capability"):
            # Microsoft's own code, beside the name, as Microsoft's report shows it.
            code = call.call_type if key == "call_type" else (
                call.capability or call.reported_capability)
            if code and code != values[key]:
                cell["code"] = code
        if key == "user" and call.upn:
            cell["url"] = _report_url(filters, call.upn)
        cells.append(cell)
    return cells


def _tick(value) -> str:
    return format_decimal(value, format="#,##0.##", locale=_locale())


def _chart(days, measure, label, fmt, *, key="total", description="", series=None,
           integer=False) -> dict:
    """One daily chart (usage.charts): stacked by `series` ([(key, name, values per day)],
    the empty ones dropped), or one bar per day of `measure` when none has a value."""
    parts = [charts.Series(k, str(name), values) for k, name, values in (series or [])
             if any(values)]
    if not parts:
        parts = [charts.Series("total", str(label), [measure(d.totals) for d in days])]
    return charts.daily_chart(key=key, days=[d.day for d in days], series=parts,
                              label=label, description=description or label, fmt=fmt,
                              tick_fmt=_tick, locale=_locale(), integer=integer)


def _split(days, split: dict, order, name_of, measure) -> list:
    """[(key, name, values per day)] of a report_daily_by split, in `order` first."""
    keys = [k for k in order if k in split] + sorted(k for k in split if k not in order)
    empty = report.Totals()
    return [(k, name_of(k), [measure(split[k].get(d.day, empty)) for d in days])
            for k in keys]


def _call_type_label(code: str) -> str:
    return labels.with_code(labels.call_type_name(code), code)


def _pstn_charts(org, filters, match, days, money) -> list[dict]:
    """Calls and credits per day by call type, minutes per day by who paid them."""
    splits = report.report_daily_by(organization=org, filters=filters, match=match)
    by_type, by_payer = splits["call_type"], splits["charged_to"]
    calls = lambda t: t.calls  # noqa: E731
    minutes = lambda t: t.minutes  # noqa: E731
    charge = lambda t: t.charge  # noqa: E731
    return [
        _chart(days, calls, _("Calls per day"), _num, key="calls", integer=True,
               description=_("Calls per day (UTC), by call type."),
               series=_split(days, by_type, report.CALL_TYPES, _call_type_label, calls)),
        _chart(days, minutes, _("Minutes per day"), lambda v: _num(v, 1), key="minutes",
               description=_("Minutes per day (UTC), by who paid them."),
               series=_split(days, by_payer, report.CHARGED_TO, report.charged_to_label,
                             minutes)),
        _chart(days, charge, _("Credits spent per day"), money, key="credits",
               description=_("Credits spent per day (UTC), by call type, in %(currency)s.")
               % {"currency": org.currency},
               series=_split(days, by_type, report.CALL_TYPES, _call_type_label, charge)),
    ]


def _person_focus(org, filters) -> dict | None:
    """The report filtered to exactly one person (a name was clicked): their licenses are
    one click away."""
    if not filters.user or "@" not in filters.user:
        return None
    person = Person.objects.filter(organization=org, upn__iexact=filters.user).only(
        "pk", "display_name", "upn").first()
    if person is None:
        return None
    return {"name": person.display_name or person.upn,
            "licenses_url": _person_url(person.pk, person.upn),
            "clear_url": reverse("reports_pstn_usage") + "?" + urlencode(
                filters.query(user=""))}


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


SPEND_LIMIT_ROWS = 10


def _spend_limits(org, filters) -> dict:
    """Month-to-date spend against the organization's limit and the people's (those near
    or over theirs, or as the report's limit filter says)."""
    line, people, any_people = spend_overview(organization=org, at=timezone.now(),
                                              status=filters.limit or "near")
    return {"line": line,
            "people": people[:SPEND_LIMIT_ROWS], "more": max(0, len(people) - SPEND_LIMIT_ROWS),
            "any_people": any_people}


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
        locale = _locale()
        rows = [_cells(c, columns, currency, digits, filters, locale) for c in page.rows]
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
        "charts": _pstn_charts(org, filters, match, days, money),
        "spenders": [
            {"s": s, "url": _report_url(filters, s.upn) if s.upn else "",
             "charge": money(s.totals.charge),
             "calls": _num(s.totals.calls)}
            for s in report.report_top_spenders(organization=org, filters=filters,
                                                match=match)
        ],
        "destinations": [
            {"d": d, "name": localized_name(d.name, _locale()), "calls": _num(d.totals.calls),
             "minutes": _num(d.totals.minutes, 1),
             "charge": money(d.totals.charge)}
            for d in report.report_top_destinations(organization=org, filters=filters,
                                                    match=match)
        ],
        "rows_allowed": rows_allowed,
        "person_focus": _person_focus(org, filters),
        "can_import": request.person.has_perm("manage_billing"),
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
        "call_type_choices": [(c, labels.with_code(labels.call_type_name(c), c))
                              for c in report.CALL_TYPES],
        "capability_choices": [(c, labels.with_code(labels.capability_name(c), c))
                               for c in report.CAPABILITIES],
        "contexts": list(CONTEXT_LABELS.items()),
        "charged_to_choices": [(v, ChargedTo(v).label) for v in report.CHARGED_TO],
        "capabilities": report.CAPABILITIES,
        "masked_digits": digits,
        "currency": currency,
        "as_of": totals.as_of,
        "export_formats": ExportFormat,
        "spend_limits": _spend_limits(org, filters),
    }
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    template = "usage/reports/_pstn_usage_body.html" if partial else \
        "usage/reports/pstn_usage.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return sync_report_range(request, response, filters=filters, query=query)


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
                                actor=Actor.from_request(request),
                                include_direct_routing=request.POST.get("direct_routing") == "1")
    except ServiceError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("reports_pstn_usage") + "?" + urlencode(filters.query()))
    # Downloads shows a banner for this export that turns into "ready" with its link.
    return redirect(reverse("reports_downloads") + f"?started={export.pk}#export-{export.pk}")


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
    started = next((i for i in items if str(i["e"].pk) == request.GET.get("started", "")),
                   None)
    context = {"items": items, "polling": any(e.is_active for e in exports),
               "rows_allowed": request.person.has_perm("view_call_rows"),
               "started": started}
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
