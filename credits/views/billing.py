"""Communications Credits pages: overview, add funds (with a confirmation step),
auto-recharge, payment methods, transactions, invoices. Views validate and call one service."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..forms.billing import AddFundsForm, AutoRechargeForm, PaymentMethodForm, SupportRequestForm
from ..invoice_pdf import invoice_pdf, invoice_pdf_filename
from ..models import Invoice, PaymentMethod, RechargeStatus
from ..payments.reasons import recharge_failure_reason
from ..payments.simulated import SimulatedGateway
from ..platform.access import permission
from ..platform.services import Actor, ServiceError
from ..selectors import billing as sel
from ..services import payment_methods as card_service
from ..services.purchases import credits_purchase
from ..services.recharges import MAX_DECLINES_IN_A_ROW, auto_recharge_configure
from ..services.support import support_request_create
from ..templatetags.money import format_money


def _apply_service_error(form, error: ServiceError) -> None:
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


def _balance_context(org) -> dict:
    account = sel.credit_account_get(organization=org)
    balance = account.balance if account else sel.credit_balance(organization=org)
    return {
        "account": account,
        "currency": account.currency if account else org.currency,
        "balance": balance,
        "balance_alert": sel.balance_alert(account=account, balance=balance),
    }


def _context(request, **extra) -> dict:
    org = request.organization
    ctx = {
        "org": org,
        **_balance_context(org),
        "eligibility": sel.purchase_eligibility(organization=org),
        "may_manage": request.person.has_perm("manage_billing"),
        "max_declines": MAX_DECLINES_IN_A_ROW,
    }
    ctx.update(extra)
    return ctx


@permission("view_billing")
def credits_overview(request):
    org = request.organization
    ctx = _context(
        request,
        last_recharge=sel.last_recharge(organization=org),
        days_left=sel.days_left_at_recent_rate(organization=org),
        recent_entries=sel.ledger_entries(organization=org)[:5],
        cards=sel.payment_methods(organization=org),
        support_form=SupportRequestForm(),
    )
    return render(request, "credits/billing/overview.html", ctx)


def _blocked(request):
    """The page that explains why this organization may not buy, instead of a form."""
    return render(request, "credits/billing/not_eligible.html",
                  _context(request, support_form=SupportRequestForm()))


@permission("manage_billing")
def add_funds(request):
    org = request.organization
    if not sel.purchase_eligibility(organization=org).allowed:
        return _blocked(request)
    form = AddFundsForm(request.POST or None, organization=org)
    if request.method == "POST" and form.is_valid():
        # The confirmation step: nothing is charged until the person places the order.
        ctx = _context(request, form=form, data=form.cleaned_data)
        ctx["balance_after"] = ctx["balance"] + form.cleaned_data["amount"]
        return render(request, "credits/billing/add_funds_confirm.html", ctx)
    return render(request, "credits/billing/add_funds.html", _context(
        request, form=form, recommended=sel.recommended_amounts(organization=org),
        has_cards=sel.payment_methods(organization=org).exists()))


@permission("manage_billing")
@require_POST
def add_funds_confirm(request):
    org = request.organization
    if not sel.purchase_eligibility(organization=org).allowed:
        return _blocked(request)
    form = AddFundsForm(request.POST, organization=org)
    if "back" in request.POST or not form.is_valid():
        return render(request, "credits/billing/add_funds.html", _context(
            request, form=form, recommended=sel.recommended_amounts(organization=org),
            has_cards=sel.payment_methods(organization=org).exists()))
    try:
        attempt = credits_purchase(
            organization=org, amount=form.cleaned_data["amount"],
            payment_method=form.cleaned_data["payment_method"],
            request_key=form.cleaned_data["request_key"], actor=Actor.from_request(request),
        )
    except ServiceError as error:
        _apply_service_error(form, error)
        return render(request, "credits/billing/add_funds.html", _context(
            request, form=form, recommended=sel.recommended_amounts(organization=org),
            has_cards=True))
    if attempt.status == RechargeStatus.SUCCEEDED:
        messages.success(request, _("%(amount)s was added to your balance.") % {
            "amount": format_money(attempt.amount, attempt.currency)})
        return redirect("billing_invoice", pk=attempt.invoice.pk)
    if attempt.status == RechargeStatus.PENDING:
        # No final answer from the gateway yet: the sweep charges the same attempt again.
        # A fresh form (a new key) would be a second order, so none is offered.
        return render(request, "credits/billing/add_funds.html", _context(
            request, form=None, recommended=sel.recommended_amounts(organization=org),
            has_cards=True, pending=attempt), status=200)
    # The declined order's key is spent (it would replay the decline): a fresh form, with
    # a new key, lets the person try another card.
    form = AddFundsForm(organization=org, initial={
        "amount": form.cleaned_data["amount"],
        "payment_method": form.cleaned_data["payment_method"].pk})
    return render(request, "credits/billing/add_funds.html", _context(
        request, form=form, recommended=sel.recommended_amounts(organization=org),
        has_cards=True, declined=attempt,
        declined_reason=recharge_failure_reason(kind=attempt.kind,
                                                code=attempt.reason_code)), status=200)


@permission("view_billing", change="manage_billing")
def auto_recharge(request):
    org = request.organization
    account = sel.credit_account_get(organization=org)
    eligibility = sel.purchase_eligibility(organization=org)
    if not eligibility.allowed:
        return _blocked(request)
    if request.method == "POST":
        form = AutoRechargeForm(request.POST, organization=org)
        if form.is_valid():
            data = form.cleaned_data
            try:
                auto_recharge_configure(
                    organization=org, enabled=data["enabled"], amount=data["amount"],
                    trigger=data["trigger"], payment_method=data["payment_method"],
                    actor=Actor.from_request(request),
                )
            except ServiceError as error:
                _apply_service_error(form, error)
            else:
                messages.success(request, _("Auto-recharge settings saved."))
                return redirect("billing_credits")
    else:
        initial = {}
        if account is not None:
            initial = {
                "enabled": account.auto_recharge_enabled,
                "amount": int(account.auto_recharge_amount)
                if account.auto_recharge_amount else None,
                "trigger": int(account.auto_recharge_trigger)
                if account.auto_recharge_trigger else None,
                "payment_method": account.auto_recharge_payment_method_id,
            }
        if not initial.get("amount"):
            rec = sel.recommended_amounts(organization=org)
            initial.update({"amount": int(rec["amount"]), "trigger": int(rec["trigger"])})
        form = AutoRechargeForm(initial=initial, organization=org)
    return render(request, "credits/billing/auto_recharge.html", _context(
        request, form=form, recommended=sel.recommended_amounts(organization=org),
        has_cards=sel.payment_methods(organization=org).exists()))


def _test_cards_apply() -> bool:
    """The test-card numbers only work against the simulated gateway (or in development)."""
    return settings.DEBUG or issubclass(import_string(settings.PAYMENT_GATEWAY), SimulatedGateway)


@permission("view_billing", change="manage_billing")
def payment_methods(request):
    org = request.organization
    form = PaymentMethodForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                method = card_service.payment_method_add(
                    organization=org, number=data["number"], exp_month=data["exp_month"],
                    exp_year=data["exp_year"], cvc=data["cvc"],
                    holder_name=data["holder_name"], actor=Actor.from_request(request),
                )
            except ServiceError as error:
                _apply_service_error(form, error)
            else:
                messages.success(request, _("%(card)s was added.") % {"card": method.label})
                return redirect("billing_payment_methods")
    account = sel.credit_account_get(organization=org)
    return render(request, "credits/billing/payment_methods.html", _context(
        request, form=form, cards=sel.payment_methods(organization=org),
        auto_card_id=account.auto_recharge_payment_method_id if account else None,
        show_test_cards=_test_cards_apply()))


@permission("manage_billing")
@require_POST
def payment_method_remove(request, pk):
    org = request.organization
    try:
        method = sel.payment_method_get(organization=org, pk=pk)
    except PaymentMethod.DoesNotExist as exc:
        raise Http404 from exc
    try:
        card_service.payment_method_remove(organization=org, payment_method=method,
                                           actor=Actor.from_request(request))
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("%(card)s was removed.") % {"card": method.label})
    return redirect("billing_payment_methods")


@permission("view_billing")
def transactions(request):
    org = request.organization
    page = Paginator(sel.ledger_entries(organization=org), 50).get_page(request.GET.get("page"))
    return render(request, "credits/billing/transactions.html", _context(request, page=page))


@permission("view_billing")
def bills(request):
    org = request.organization
    page = Paginator(sel.invoices(organization=org), 50).get_page(request.GET.get("page"))
    return render(request, "credits/billing/bills.html", _context(
        request, page=page, attempts=sel.recharge_attempts(organization=org)[:20]))


@permission("view_billing")
def invoice_detail(request, pk):
    try:
        invoice = sel.invoice_get(organization=request.organization, pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc
    return render(request, "credits/billing/invoice.html", _context(request, invoice=invoice))


@permission("view_billing")
def invoice_pdf_download(request, pk):
    try:
        invoice = sel.invoice_get(organization=request.organization, pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc
    document = invoice_pdf(invoice, language=get_language() or "en")
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice_pdf_filename(invoice)}"'
    return response


@permission("manage_billing")
@require_POST
def support_request(request):
    form = SupportRequestForm(request.POST)
    if form.is_valid():
        try:
            reference = support_request_create(
                organization=request.organization,
                subject="Communications Credits purchase",
                message=form.cleaned_data["message"], actor=Actor.from_request(request),
            )
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Your support request %(ref)s was recorded. Support "
                                        "will contact you.") % {"ref": reference})
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect(reverse("billing_credits"))


def home_banners(request) -> str:
    """The home page's zero- and low-balance banners, the same as the overview's."""
    return render_to_string("credits/billing/_balance_banners.html",
                            _balance_context(request.organization), request=request)


def home_card(request) -> dict:
    """The "Communications Credits" card of the home page."""
    org = request.organization
    summary = sel.credit_account_summary(organization=org)
    ar = summary["autoRecharge"]
    if ar["enabled"]:
        text = _("Auto-recharge is on: add %(amount)s when the balance is below "
                 "%(trigger)s.") % {"amount": format_money(ar["amount"], summary["currency"]),
                                    "trigger": format_money(ar["threshold"],
                                                            summary["currency"])}
    else:
        text = _("Auto-recharge is off.")
    card = {"figure": format_money(summary["balance"], summary["currency"]), "text": text,
            "link_label": _("Open")}
    if request.person.has_perm("manage_billing"):
        card.update({"url2": reverse("billing_add_funds"), "link2_label": _("Add funds")})
    return card
