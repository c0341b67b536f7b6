"""Settings > API tokens: create (shown once) and revoke the organization's tokens."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from credits.platform.access import permission
from credits.platform.services import Actor, ServiceError

from ..forms import ApiTokenForm
from ..models import ApiToken
from ..selectors import api_tokens as api_tokens_of
from ..services import api_token_create, api_token_revoke


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
