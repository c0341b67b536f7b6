"""The PSTN usage report's Direct Routing tab (`/reports/pstn-usage/direct-routing/`): the
calls that went through the organization's own SBCs and carrier, as Microsoft's admin center
shows them: success and failure counts, failures by final SIP code, calls per day, per SBC,
and the calls themselves (newest first, paged). Filters: the date range, SBC, success and
user. These calls are never charged, so the tab shows no money."""

from datetime import UTC, timedelta
from types import SimpleNamespace

from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from credits.platform.access import permission

from .. import direct_routing_store as store
from .. import labels, masking, report
from ..direct_routing import mask_dr_numbers
from ..models import ExportFormat
from .report_range import sync_report_range
from .reports import RANGE_LABELS, _chart, _num

SUCCESS_LABELS = {"success": _("Success"), "failure": _("Attempt (failed)")}


def _time(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _yes_no(value) -> str:
    if value is None:
        return ""
    return str(_("Yes") if value else _("No"))


def _row(call, digits: int) -> dict:
    caller, callee = mask_dr_numbers(call.call_type, call.caller_number, call.callee_number,
                                     digits)
    return {
        "start": _time(call.start_at), "name": call.user_display_name, "upn": call.upn,
        "caller": caller, "callee": callee,
        "call_type": labels.with_code(labels.call_type_name(call.call_type), call.call_type),
        "event": SUCCESS_LABELS["success" if call.successful else "failure"],
        "successful": call.successful, "duration": _num(call.duration_s),
        "invite": _time(call.invite_at), "failure": _time(call.failure_at),
        "end": _time(call.end_at),
        "sip_code": "" if call.final_sip_code is None else call.final_sip_code,
        "subcode": "" if call.final_subcode is None else call.final_subcode,
        "phrase": call.final_sip_phrase, "sbc": call.sbc_fqdn,
        "bypass": _yes_no(call.media_bypass), "media_region": call.media_region,
        "signaling_region": call.signaling_region, "correlation_id": call.correlation_id,
    }


@permission("view_usage")
def direct_routing(request):
    org = request.organization
    today = timezone.now().astimezone(UTC).date()
    filters, errors = report.filters_from_query(request.GET, today=today)
    sbc, sbc_ok = report.query_text(request.GET, "sbc", max_length=64)
    success, success_ok = report.query_text(request.GET, "success")
    if not sbc_ok:
        errors["sbc"] = _("Contains a character that is not allowed.")
    if success and success not in store.SUCCESS_CHOICES:
        errors["success"] = _("Unknown value.")
        success = ""
    dr_filters = store.DirectRoutingFilters(start=filters.start, end=filters.end, sbc=sbc,
                                            success=success, user=filters.user)
    start_at, end_before = store.day_range(filters.start, filters.end)
    qs = store.filtered(organization=org, filters=dr_filters, start_at=start_at,
                        end_before=end_before)
    summary = store.direct_routing_summary(qs)
    per_day = {d: (ok, failed) for d, ok, failed in summary.by_day}
    days = [SimpleNamespace(day=filters.start + timedelta(days=n),
                            totals=per_day.get(filters.start + timedelta(days=n), (0, 0)))
            for n in range(filters.days)]
    digits = masking.digits_masked(org.country)
    rows_allowed = request.person.has_perm("view_call_rows")
    rows, next_cursor = [], ""
    if rows_allowed and summary.calls:
        calls, next_cursor = store.rows_page(qs, after=request.GET.get("after", ""))
        rows = [_row(c, digits) for c in calls]
    query = {**filters.query(), "sbc": sbc, "success": success}
    query = {k: v for k, v in query.items() if v and k in ("range", "from", "to", "user",
                                                         "sbc", "success")}
    percent = (summary.failed * 100 / summary.calls) if summary.calls else None
    context = {
        "filters": filters, "sbc": sbc, "success": success, "errors": errors,
        "summary": summary,
        "tiles": {"calls": _num(summary.calls), "succeeded": _num(summary.succeeded),
                  "failed": _num(summary.failed),
                  "failure_rate": _num(percent, 1) + " %" if percent is not None else "—",
                  "minutes": _num(summary.seconds / 60, 1)},
        "charts": [
            _chart(days, lambda t: t[0] + t[1], _("Calls per day"), _num, key="dr-calls",
                   integer=True,
                   description=_("Direct Routing calls per day (UTC): succeeded and failed."),
                   series=[("success", SUCCESS_LABELS["success"], [d.totals[0] for d in days]),
                           ("failure", SUCCESS_LABELS["failure"],
                            [d.totals[1] for d in days])]),
            _chart(days, lambda t: t[1], _("Failed calls per day"), _num, key="dr-failed",
                   integer=True),
        ],
        "by_code": [{**c, "calls": _num(c["calls"])} for c in summary.by_code],
        "by_sbc": [{**s, "calls_text": _num(s["calls"]), "failed_text": _num(s["failed"])}
                   for s in summary.by_sbc],
        "sbcs": store.sbc_choices(organization=org, since=start_at - timedelta(days=366)),
        "success_choices": list(SUCCESS_LABELS.items()),
        "range_labels": RANGE_LABELS,
        "rows_allowed": rows_allowed, "rows": rows,
        "item_count": summary.calls,
        "next_url": "?" + urlencode({**query, "after": next_cursor}) if next_cursor else "",
        "first_url": "?" + urlencode(query),
        "paged": bool(request.GET.get("after")),
        "masked_digits": digits,
        "as_of": summary.as_of,
        "export_formats": ExportFormat,
        "export_query": filters.query(),
    }
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    template = "usage/reports/_direct_routing_body.html" if partial else \
        "usage/reports/direct_routing.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return sync_report_range(request, response, filters=filters, query=query)
