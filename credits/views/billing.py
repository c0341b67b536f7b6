"""Communications Credits pages: overview, add funds (with a confirmation step),
auto-recharge, payment methods, transactions, invoices. Views validate and call one service."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..forms.adjustments import TransactionsExportForm
from ..forms.billing import AddFundsForm, AutoRechargeForm, PaymentMethodForm, SupportRequestForm
from ..invoice_pdf import invoice_pdf, invoice_pdf_filename
from ..models import CreditAccount, Invoice, PaymentMethod, RechargeStatus
from ..money import ZERO
from ..payments.reasons import recharge_failure_reason
from ..payments.simulated import SimulatedGateway
from ..platform.access import permission
from ..platform.services import Actor, ServiceError
from ..selectors import billing as sel
from ..selectors import refunds as refund_sel
from ..selectors.spend_limits import organization_spend
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
        "auto_recharge_capped": sel.auto_recharge_paused_by_cap(account=account),
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
    account = ctx["account"]
    ctx["daily_cap"] = (sel.auto_recharge_daily_cap_shown(account=account)
                        if account is not None else None)
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
        line=organization_spend(organization=org, at=timezone.now()),
    )
    return render(request, "credits/billing/overview.html", ctx)


def _blocked(request):
    """The page that explains why this organization may not buy, instead of a form."""
    return render(request, "credits/billing/not_eligible.html",
                  _context(request, support_form=SupportRequestForm()))


def _pending(request, attempt):
    """The add-funds page while a purchase is not confirmed: no form, so no second order
    (a new key) while the sweep settles this one."""
    org = request.organization
    return render(request, "credits/billing/add_funds.html", _context(
        request, form=None, recommended=sel.recommended_amounts(organization=org),
        has_cards=True, pending=attempt))


@permission("manage_billing")
def add_funds(request):
    org = request.organization
    if not sel.purchase_eligibility(organization=org).allowed:
        return _blocked(request)
    pending = sel.pending_purchase(organization=org)
    if pending is not None:
        return _pending(request, pending)
    preferred = None if request.method == "POST" else sel.preferred_payment_method(
        organization=org)
    form = AddFundsForm(request.POST or None, organization=org,
                        initial={"payment_method": preferred.pk} if preferred else None)
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
    pending = sel.pending_purchase(organization=org)
    if pending is not None and pending.request_key != form.cleaned_data["request_key"]:
        return _pending(request, pending)  # another order, placed while one is unconfirmed
    try:
        attempt = credits_purchase(
            organization=org, amount=form.cleaned_data["amount"],
            payment_method=form.cleaned_data["payment_method"],
            request_key=form.cleaned_data["request_key"], actor=Actor.from_request(request),
            po_number=form.cleaned_data["po_number"],
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
        # No final answer from the gateway yet: the sweep settles the same attempt. This
        # order sent again (a refresh, back and submit) replays its key and lands here again.
        return _pending(request, attempt)
    # The declined order's key is spent (it would replay the decline): a fresh form, with
    # a new key, lets the person try another card.
    form = AddFundsForm(organization=org, initial={
        "amount": form.cleaned_data["amount"], "po_number": form.cleaned_data["po_number"],
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
    if not sel.purchase_eligibility(organization=org).allowed:
        return _auto_recharge_off_only(request, account)
    if request.method == "POST":
        form = AutoRechargeForm(request.POST, organization=org)
        if "back" not in request.POST and form.is_valid():
            return _auto_recharge_save(request, form, account)
    else:
        form = AutoRechargeForm(initial=_auto_recharge_initial(org, account), organization=org)
    return _auto_recharge_page(request, form)


def _auto_recharge_page(request, form, status=200):
    org = request.organization
    return render(request, "credits/billing/auto_recharge.html", _context(
        request, form=form, recommended=sel.recommended_amounts(organization=org),
        has_cards=sel.payment_methods(organization=org).exists()), status=status)


def _auto_recharge_initial(org, account) -> dict:
    def whole(value):
        return int(value) if value is not None else None

    initial = {}
    if account is not None:
        initial = {
            "enabled": account.auto_recharge_enabled,
            "mode": account.auto_recharge_mode,
            "amount": whole(account.auto_recharge_amount),
            "trigger": whole(account.auto_recharge_trigger),
            "target": whole(account.auto_recharge_target),
            "daily_cap": whole(account.auto_recharge_daily_cap),
            "po_number": account.auto_recharge_po_number,
            "payment_method": account.auto_recharge_payment_method_id,
        }
    if not initial.get("trigger"):
        rec = sel.recommended_amounts(organization=org)
        initial.update({"amount": int(rec["amount"]), "trigger": int(rec["trigger"])})
    return initial


def _auto_recharge_save(request, form, account):
    """Save valid settings. When they charge the card at once, first a confirmation step
    that states the amount and the card; only its "Confirm" saves, and the save refuses a
    different amount than the one shown (the balance moved meanwhile)."""
    org = request.organization
    data = form.cleaned_data
    confirmed = "confirm" in request.POST and data.get("confirm_charge") is not None
    charge = None
    if data["enabled"]:
        charge = sel.auto_recharge_charge_now(
            account=account or CreditAccount(organization=org, currency=org.currency),
            settings=form.recharge_settings(), payment_method=data["payment_method"])
        if charge.amount > 0 and not confirmed:
            return _auto_recharge_confirm(request, form, account, charge)
    try:
        auto_recharge_configure(
            organization=org, enabled=data["enabled"], mode=data["mode"],
            amount=data["amount"], trigger=data["trigger"], target=data["target"],
            daily_cap=data["daily_cap"], po_number=data["po_number"],
            payment_method=data["payment_method"],
            expected_charge=(data["confirm_charge"] if confirmed
                             else None if not data["enabled"] else charge.amount),
            actor=Actor.from_request(request),
        )
    except ServiceError as error:
        if error.code == "charge_changed":
            account = sel.credit_account_get(organization=org)
            charge = sel.auto_recharge_charge_now(
                account=account, settings=form.recharge_settings(),
                payment_method=data["payment_method"])
            if charge.amount > 0:
                return _auto_recharge_confirm(request, form, account, charge,
                                              changed=error.message)
        _apply_service_error(form, error)
        return _auto_recharge_page(request, form)
    if charge is not None and charge.amount > 0:
        messages.success(request, _("Auto-recharge settings saved. %(amount)s is being "
                                    "charged to %(card)s now.") % {
            "amount": format_money(charge.amount, org.currency),
            "card": charge.payment_method.label})
    else:
        messages.success(request, _("Auto-recharge settings saved."))
    return redirect("billing_credits")


def _auto_recharge_confirm(request, form, account, charge, changed=""):
    balance = account.balance if account is not None else ZERO
    return render(request, "credits/billing/auto_recharge_confirm.html", _context(
        request, form=form, data=form.cleaned_data, charge=charge,
        balance_after=balance + charge.amount, changed=changed))


def _auto_recharge_off_only(request, account):
    """An organization that may not buy (post-paid, partner, another region): the reason,
    and, while auto-recharge is on, the one change left to it: turning it off."""
    org = request.organization
    if request.method == "POST":  # the decorator lets only manage_billing change
        if account is not None and account.auto_recharge_enabled:
            auto_recharge_configure(organization=org, enabled=False,
                                    actor=Actor.from_request(request))
            messages.success(request, _("Auto-recharge is off. The card is not charged any "
                                        "more."))
        return redirect("billing_auto_recharge")
    return render(request, "credits/billing/auto_recharge_off_only.html", _context(request))


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
    export_form = TransactionsExportForm(initial=TransactionsExportForm.initial_range())
    return render(request, "credits/billing/transactions.html",
                  _context(request, page=page, export_form=export_form))


@permission("view_billing")
def bills(request):
    org = request.organization
    page = Paginator(sel.invoices(organization=org), 50).get_page(request.GET.get("page"))
    notes = Paginator(refund_sel.credit_notes(organization=org), 50).get_page(
        request.GET.get("cn_page"))
    return render(request, "credits/billing/bills.html", _context(
        request, page=page, notes=notes,
        attempts=sel.recharge_attempts(organization=org)[:20]))


@permission("view_billing")
def invoice_detail(request, pk):
    try:
        invoice = sel.invoice_get(organization=request.organization, pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc
    return render(request, "credits/billing/invoice.html", _context(
        request, invoice=invoice, refunds=refund_sel.invoice_refunds(invoice=invoice),
        refund_state=refund_sel.invoice_refund_state(invoice=invoice)))


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
                            {**_balance_context(request.organization),
                             "may_manage": request.person.has_perm("manage_billing")},
                            request=request)


def _spend_words(org) -> str:
    """Month-to-date spend against the organization's monthly limit, in words."""
    line = organization_spend(organization=org, at=timezone.now())
    spent = format_money(line.spent, line.currency)
    if line.limit is None:
        return _("Spent this month: %(spent)s (no monthly limit).") % {"spent": spent}
    return _("Spent this month: %(spent)s of the %(limit)s monthly limit (%(percent)s%%).") % {
        "spent": spent, "limit": format_money(line.limit, line.currency),
        "percent": line.percent}


def home_card(request) -> dict:
    """The "Communications Credits" card of the home page."""
    org = request.organization
    summary = sel.credit_account_summary(organization=org)
    ar = summary["autoRecharge"]
    if ar["enabled"] and ar.get("mode") == "target_balance":
        text = _("Auto-recharge is on: recharge to %(target)s when the balance is below "
                 "%(trigger)s.") % {"target": format_money(ar["target"], summary["currency"]),
                                    "trigger": format_money(ar["threshold"],
                                                            summary["currency"])}
    elif ar["enabled"]:
        text = _("Auto-recharge is on: add %(amount)s when the balance is below "
                 "%(trigger)s.") % {"amount": format_money(ar["amount"], summary["currency"]),
                                    "trigger": format_money(ar["threshold"],
                                                            summary["currency"])}
    else:
        text = _("Auto-recharge is off.")
    card = {"figure": format_money(summary["balance"], summary["currency"]), "text": text,
            "link_label": _("Open"), "lines": [_spend_words(org)]}
    if request.person.has_perm("manage_billing"):
        card.update({"url2": reverse("billing_add_funds"), "link2_label": _("Add funds")})
    return card
