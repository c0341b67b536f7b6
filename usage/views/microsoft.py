"""Settings > Microsoft connection: the connection (secret masked), test connection, pull
now, backfill, and the run history."""

from datetime import UTC, timedelta

from babel.dates import format_time
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import get_language, to_locale
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from credits.platform.access import permission, person_may
from credits.platform.services import Actor, ServiceError
from credits.templatetags.dates import format_day, format_when

from ..forms import MicrosoftBackfillForm, MicrosoftConnectionForm
from ..microsoft import connection_test, pull, secrets
from ..microsoft.errors import describe

READ = ("manage_api_tokens", "view_settings")
MANAGE = "manage_api_tokens"
RUNS_PER_PAGE = 20


def window_label(run) -> tuple[str, str]:
    """(short, full) text of a run's window, in UTC and the dates rule of every page
    (credits.templatetags.dates): the times alone when the window lies in the day the run
    started (a scheduled pull), the days alone when it spans a day or more (a backfill);
    the full window goes in the cell's title."""
    start, end = run.window_start, run.window_end
    if start is None or end is None:
        return "-", ""
    full = f"{format_when(start)} – {format_when(end)} UTC"
    if end - start >= timedelta(days=1):
        return f"{format_day(start)} – {format_day(end)}", full
    if format_day(start) == format_day(end) == format_day(run.started_at):
        return f"{_time(start)} – {_time(end)}", full
    return f"{format_when(start)} – {_time(end)}", full


def _time(value) -> str:
    return format_time(value.astimezone(UTC), "short",
                       locale=to_locale(get_language() or "en"))


@permission(*READ, change=MANAGE)
def microsoft_connection(request):
    org = request.organization
    connection = pull.connection_of(organization=org)
    status = 200
    if request.method == "POST":
        form = MicrosoftConnectionForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                pull.microsoft_connection_save(
                    organization=org, tenant_id=data["tenant_id"], client_id=data["client_id"],
                    cloud=data["cloud"], client_secret=data["client_secret"],
                    certificate_pem=data["certificate"], enabled=data["enabled"],
                    actor=Actor.from_request(request))
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("Microsoft connection saved. Test it to check the "
                                            "permission and the consent."))
                return redirect("settings_microsoft")
        status = 400
    else:
        initial = {"enabled": True}
        if connection is not None:
            initial = {"tenant_id": connection.tenant_id, "client_id": connection.client_id,
                       "cloud": connection.cloud, "enabled": connection.enabled}
        form = MicrosoftConnectionForm(initial=initial)
    page = Paginator(pull.runs_of(organization=org), RUNS_PER_PAGE).get_page(
        request.GET.get("page"))
    page.object_list = list(page.object_list)
    for run in page.object_list:
        run.window_short, run.window_full = window_label(run)
    return render(request, "usage/microsoft.html", {
        "connection": connection,
        "last_test": (connection_test.last_test_sentence(connection)
                      if connection is not None else ""),
        "form": form,
        "backfill_form": MicrosoftBackfillForm(),
        "page": page,
        "running": pull.run_in_progress(organization=org),
        "failing": pull.is_failing(connection),
        "key_configured": secrets.key_configured(),
        "no_key_message": describe("no_key"),
        "may_manage": person_may(request.person, frozenset({MANAGE})),
        "max_backfill_days": pull.MAX_BACKFILL_DAYS,
    }, status=status)


@permission(MANAGE)
@require_POST
def microsoft_test(request):
    result = connection_test.microsoft_connection_test(organization=request.organization,
                                                       actor=Actor.from_request(request))
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect("settings_microsoft")


@permission(MANAGE)
@require_POST
def microsoft_pull_now(request):
    try:
        pull.microsoft_pull_request(organization=request.organization,
                                    actor=Actor.from_request(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("A pull was asked for; it runs in the background."))
    return redirect("settings_microsoft")


@permission(MANAGE)
@require_POST
def microsoft_backfill(request):
    form = MicrosoftBackfillForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("settings_microsoft")
    days = form.cleaned_data["days"]
    try:
        pull.microsoft_backfill_request(organization=request.organization, days=days,
                                        actor=Actor.from_request(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Backfill of the last %(days)s days asked for; its "
                                    "progress shows below.") % {"days": days})
    return redirect("settings_microsoft")


@permission(MANAGE)
@require_POST
def microsoft_disconnect(request):
    if pull.microsoft_connection_delete(organization=request.organization,
                                        actor=Actor.from_request(request)):
        messages.success(request, _("Disconnected from Microsoft. The calls already pulled "
                                    "stay."))
    return redirect("settings_microsoft")
