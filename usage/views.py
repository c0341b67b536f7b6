from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from credits.access import permission
from credits.services.tenants import Actor, ServiceError

from . import decks, ingest
from .forms import ApiTokenForm, PstnImportForm, RateDeckUploadForm
from .imports import import_job_start
from .models import ApiToken, Direction, ImportJob, ImportStatus, NumberType, RateDeck
from .rating import MAX_CHARGE_PER_CALL
from .report import query_text
from .selectors import api_tokens as api_tokens_of
from .selectors import rates_all, rates_search, unrated_calls
from .services import api_token_create, api_token_revoke, rate_deck_load

# The words for usage.rating.UNRATED_REASONS (the engine stays free of Django).
UNRATED_LABELS = {
    "unknown_call_type": gettext_lazy("the call type is not one this system knows"),
    "masked_number": gettext_lazy("the priced number is masked"),
    "missing_number": gettext_lazy("the priced number is empty"),
    "not_a_number": gettext_lazy("the priced number is not a phone number"),
    "no_rate": gettext_lazy("no rate in the deck matches the number"),
    "no_toll_free_rate": gettext_lazy("the called toll-free number has no inbound toll-free rate"),
    "charge_over_limit": format_lazy(
        gettext_lazy("the call would cost more than {limit}, the limit for one call"),
        limit=MAX_CHARGE_PER_CALL),
}

# --- rates --------------------------------------------------------------------------------


def _rates_context(request, form=None, errors=None):
    org = request.organization
    q, usable = query_text(request.GET, "q")
    if not usable:
        messages.warning(request, _("The search was ignored: it contains a character that "
                                    "is not allowed."))
    # Values outside the lists would find nothing: they are dropped like the search.
    direction = query_text(request.GET, "direction")[0]
    if direction not in Direction.values:
        direction = ""
    number_type = query_text(request.GET, "number_type")[0]
    if number_type not in NumberType.values:
        number_type = ""
    qs = rates_search(organization=org, q=q, direction=direction, number_type=number_type)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    # The pager's links carry the search as it was understood, never the raw parameters.
    params = {k: v for k, v in (("q", q), ("direction", direction),
                                ("number_type", number_type)) if v}
    return {
        "page": page,
        "q": q,
        "direction": direction,
        "number_type": number_type,
        "directions": Direction.choices,
        "number_types": NumberType.choices,
        "querystring_base": urlencode(params),
        "deck": RateDeck.objects.filter(organization=org).first(),
        "may_manage": request.person.has_perm("manage_rates"),
        "form": form or RateDeckUploadForm(),
        "line_errors": errors or [],
        "currency": org.currency,
    }


@permission("view_rates")
def rates(request):
    return render(request, "usage/rates.html", _rates_context(request))


@permission("manage_rates")
@require_POST
def rates_upload(request):
    org = request.organization
    form = RateDeckUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "usage/rates.html", _rates_context(request, form), status=400)
    upload = form.cleaned_data["file"]
    try:
        parsed, errors = decks.parse_deck(upload.read(), org.currency)
    except decks.DeckError as exc:
        form.add_error("file", str(exc))
        return render(request, "usage/rates.html", _rates_context(request, form), status=400)
    if errors and not form.cleaned_data["skip_bad_rows"]:
        form.add_error("file", _("%(n)s bad line(s); nothing was loaded.") % {"n": len(errors)})
        return render(request, "usage/rates.html", _rates_context(request, form, errors),
                      status=400)
    try:
        count = rate_deck_load(organization=org, rates=parsed, source_name=upload.name,
                               replace=not form.cleaned_data["merge"],
                               actor=Actor.from_request(request))
    except ServiceError as exc:
        form.add_error("file", exc.message)
        return render(request, "usage/rates.html", _rates_context(request, form), status=400)
    note = _("Loaded %(n)s rates.") % {"n": count}
    if errors:
        note += " " + _("Skipped %(n)s bad line(s).") % {"n": len(errors)}
    messages.success(request, note)
    return redirect("settings_rates")


@permission("view_rates")
def rates_download(request):
    org = request.organization
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="rate-deck-{org.slug}-{stamp}.csv"'
    decks.write_deck(rates_all(organization=org), response)
    return response


# --- API tokens ---------------------------------------------------------------------------


@permission("manage_api_tokens")
def api_tokens(request):
    org = request.organization
    form = ApiTokenForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                token, new_token = api_token_create(organization=org,
                                                    name=form.cleaned_data["name"],
                                                    actor=Actor.from_request(request))
                form = ApiTokenForm()
            except ServiceError as exc:
                form.add_error(exc.field or None, exc.message)
        if form.errors:
            status = 400
    # The new token is in this response only: it is never stored and cannot be shown again.
    return render(request, "usage/api_tokens.html", {
        "tokens": api_tokens_of(organization=org),
        "form": form,
        "new_token": new_token,
    }, status=status)


@permission("manage_api_tokens")
@require_POST
def api_token_revoke_view(request, pk):
    token = get_object_or_404(ApiToken, organization=request.organization, pk=pk)
    api_token_revoke(token=token, actor=Actor.from_request(request))
    messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("settings_api_tokens")


# --- PSTN calls import --------------------------------------------------------------------


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
