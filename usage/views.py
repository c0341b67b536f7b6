from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from credits.access import permission
from credits.services.tenants import Actor, ServiceError

from . import decks, ingest
from .forms import ApiTokenForm, PstnImportForm, RateDeckUploadForm
from .models import ApiToken, Direction, NumberType, RateDeck
from .selectors import api_tokens as api_tokens_of
from .selectors import rates_all, rates_search, unrated_calls
from .services import api_token_create, api_token_revoke, calls_ingest_all, rate_deck_load

# The words for usage.rating.UNRATED_REASONS (the engine stays free of Django).
UNRATED_LABELS = {
    "unknown_call_type": gettext_lazy("the call type is not one this system knows"),
    "masked_number": gettext_lazy("the priced number is masked"),
    "missing_number": gettext_lazy("the priced number is empty"),
    "not_a_number": gettext_lazy("the priced number is not a phone number"),
    "no_rate": gettext_lazy("no rate in the deck matches the number"),
    "no_toll_free_rate": gettext_lazy("the called toll-free number has no inbound toll-free rate"),
}

# --- rates --------------------------------------------------------------------------------


def _rates_context(request, form=None, errors=None):
    org = request.organization
    q = request.GET.get("q", "")
    direction = request.GET.get("direction", "")
    number_type = request.GET.get("number_type", "")
    qs = rates_search(organization=org, q=q, direction=direction, number_type=number_type)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return {
        "page": page,
        "q": q,
        "direction": direction,
        "number_type": number_type,
        "directions": Direction.choices,
        "number_types": NumberType.choices,
        "querystring_base": params.urlencode(),
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


# Importing calls charges the prepaid balance, so it needs a permission that may spend it
# (manage_billing: the Billing and Global Administrators), not the read-only view_usage
# that Global Readers and support engineers hold.
@permission("manage_billing")
def pstn_import(request):
    org = request.organization
    form = PstnImportForm(request.POST or None, request.FILES or None)
    result = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = ingest.rows_from_file(upload.name, upload.read())
            except ingest.FileError as exc:
                form.add_error("file", str(exc))
            else:
                result = calls_ingest_all(organization=org, rows=rows, source="upload",
                                          actor=Actor.from_request(request))
        if form.errors:
            status = 400
    unrated = unrated_calls(organization=org)
    shown = list(unrated[:50])
    for call in shown:
        call.reason_label = UNRATED_LABELS.get(call.unrated_reason, call.unrated_reason)
    return render(request, "usage/pstn_import.html", {
        "form": form,
        "result": result,
        "rejected": (result.rejected[:200] if result else []),
        "unrated": shown,
        "unrated_count": unrated.count(),
    }, status=status)
