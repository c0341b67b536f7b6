"""Settings > Rates: the organization's rate deck, searched, uploaded and downloaded."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from credits.platform.access import permission
from credits.platform.services import Actor, ServiceError

from .. import decks
from ..forms import RateDeckUploadForm
from ..models import Direction, NumberType, RateDeck
from ..report import query_text
from ..selectors import rates_all, rates_search
from ..services import rate_deck_load


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
