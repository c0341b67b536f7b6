"""The monthly spend limit pages: the organization's limit (beside auto-recharge), a
person's limit (on their licenses page) and a limit for many people at once (Active users).
Views validate and call one service (credits.services.spend_limits)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..forms.spend_limits import BulkLimitForm, PersonLimitForm, SpendLimitForm
from ..models import Person
from ..platform.access import permission
from ..platform.selectors import person_get
from ..platform.services import Actor, ServiceError
from ..selectors import billing as sel
from ..selectors.spend_limits import organization_spend, people_spend
from ..services.spend_limits import (
    people_spend_limit_set,
    person_spend_limit_set,
    spend_limit_set,
)
from ..templatetags.money import format_money


def _limit_words(limit, currency) -> str:
    return _("no limit") if limit is None else format_money(limit, currency)


@permission("view_billing", change="manage_billing")
def spend_limit(request):
    org = request.organization
    may_manage = request.person.has_perm("manage_billing")
    now = timezone.now()
    if request.method == "POST":
        form = SpendLimitForm(request.POST)
        if form.is_valid():
            try:
                spend_limit_set(organization=org, monthly_limit=form.cleaned_data[
                    "monthly_limit"], actor=Actor.from_request(request))
            except ServiceError as error:
                form.add_error("monthly_limit", error.message)
            else:
                messages.success(request, _("Monthly spend limit saved: %(limit)s.") % {
                    "limit": _limit_words(form.cleaned_data["monthly_limit"], org.currency)})
                return redirect("billing_spend_limit")
        status = 400
    else:
        line = organization_spend(organization=org, at=now)
        form = SpendLimitForm(initial={"monthly_limit": "" if line.limit is None
                                       else line.limit})
        status = 200
    account = sel.credit_account_get(organization=org)
    return render(request, "credits/billing/spend_limit.html", {
        "org": org, "form": form, "may_manage": may_manage, "account": account,
        "currency": org.currency, "eligibility": sel.purchase_eligibility(organization=org),
        "line": organization_spend(organization=org, at=now),
        "people": people_spend(organization=org, at=now)[:20],
    }, status=status)


@permission("manage_licenses")
@require_POST
def person_spend_limit(request, pk):
    try:
        person = person_get(organization=request.organization, pk=pk)
    except Person.DoesNotExist:
        raise Http404 from None
    form = PersonLimitForm(request.POST)
    if form.is_valid():
        try:
            person_spend_limit_set(person=person, monthly_limit=form.cleaned_data[
                "monthly_limit"], actor=Actor.from_request(request))
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Monthly credits limit of %(name)s: %(limit)s.") % {
                "name": person.display_name,
                "limit": _limit_words(form.cleaned_data["monthly_limit"],
                                      request.organization.currency)})
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("person_licenses", pk=person.pk)


@permission("manage_licenses")
@require_POST
def users_bulk_limit(request):
    ids = [v for v in request.POST.getlist("people")
           if v.isascii() and v.isdigit() and len(v) <= 18]
    known = list(Person.objects.filter(organization=request.organization, pk__in=ids)
                 .values_list("pk", flat=True))
    form = BulkLimitForm(request.POST, people_ids=known)
    if form.is_valid():
        try:
            changed = people_spend_limit_set(
                organization=request.organization, people_ids=form.cleaned_data["people"],
                monthly_limit=form.cleaned_data["monthly_limit"],
                actor=Actor.from_request(request))
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Monthly credits limit %(limit)s set for %(n)s of "
                                        "%(total)s selected people.") % {
                "limit": _limit_words(form.cleaned_data["monthly_limit"],
                                      request.organization.currency),
                "n": changed, "total": len(form.cleaned_data["people"])})
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect("users")
