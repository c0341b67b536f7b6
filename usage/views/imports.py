"""Reports > PSTN usage > Import: upload a calls file and follow its background import."""

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from credits.platform.access import permission
from credits.platform.services import Actor

from .. import ingest
from ..forms import PstnImportForm
from ..imports import import_job_start
from ..labels import UNRATED_REASONS
from ..models import ImportJob, ImportStatus
from ..selectors import unrated_calls

# The words for usage.rating.UNRATED_REASONS (the engine stays free of Django).
UNRATED_LABELS = UNRATED_REASONS


def _import_job(request) -> ImportJob | None:
    """The organization's import named by `?job=`, if any (another's is a 404)."""
    raw = request.GET.get("job", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        raise Http404
    return get_object_or_404(ImportJob.objects.select_related("requester"),
                             organization=request.organization, pk=int(raw))


# Importing calls charges the prepaid balance, so it needs a permission that may spend it
# (manage_billing: the Billing and Global Administrators), not the read-only view_usage
# that Global Readers and support engineers hold.
@permission("manage_billing")
def pstn_import(request):
    """Upload a calls file: it is saved and imported in the background (usage.imports),
    and the page follows the job (`?job=`): htmx polls the job's fragment while it runs,
    and without JavaScript a reload shows the same."""
    org = request.organization
    form = PstnImportForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = import_job_start(organization=org, requester=request.person,
                                       upload=form.cleaned_data["file"],
                                       actor=Actor.from_request(request))
            except ingest.FileError as exc:
                form.add_error("file", str(exc))
            else:
                return redirect(f"{reverse('reports_pstn_import')}?job={job.pk}")
        status = 400
    job = _import_job(request)
    context = {
        "job": job,
        "result": job if job is not None and job.status == ImportStatus.DONE else None,
        "rejected": job.rejected[:200] if job is not None else [],
    }
    if job is not None and request.headers.get("HX-Request") and not request.headers.get(
            "HX-History-Restore-Request"):
        response = render(request, "usage/_import_job.html", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    unrated = unrated_calls(organization=org)
    shown = list(unrated[:50])
    for call in shown:
        call.reason_label = UNRATED_LABELS.get(call.unrated_reason, call.unrated_reason)
    response = render(request, "usage/pstn_import.html", {
        **context,
        "form": form,
        "recent": ImportJob.objects.filter(organization=org).select_related("requester")[:5],
        "unrated": shown,
        "unrated_count": unrated.count(),
    }, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response
