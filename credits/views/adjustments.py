"""The Transactions area's levers: adjusting the balance by hand (a form, then a
confirmation step), and exporting the transactions of a date range to .xlsx or CSV."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..forms.adjustments import AdjustmentForm, TransactionsExportForm
from ..platform.access import permission
from ..platform.services import Actor, ServiceError
from ..selectors import billing as sel
from ..services.adjustments import balance_adjust
from ..templatetags.money import format_money
from ..transactions_export import export_filename, transactions_csv, transactions_xlsx
from .billing import _apply_service_error, _context

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _form_page(request, form, status=200):
    return render(request, "credits/billing/adjust_balance.html",
                  _context(request, form=form), status=status)


def _confirm_page(request, form, *, error: str = "", status=200):
    ctx = _context(request, form=form, data=form.cleaned_data, error=error)
    ctx["amount"] = form.signed_amount
    ctx["balance_after"] = ctx["balance"] + form.signed_amount
    ctx["below_zero"] = form.signed_amount < 0 and ctx["balance_after"] < 0
    return render(request, "credits/billing/adjust_balance_confirm.html", ctx, status=status)


@permission("manage_billing")
def adjust_balance(request):
    form = AdjustmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # The confirmation step: nothing is written until the person confirms.
        return _confirm_page(request, form)
    return _form_page(request, form, status=400 if form.is_bound else 200)


@permission("manage_billing")
@require_POST
def adjust_balance_confirm(request):
    form = AdjustmentForm(request.POST)
    if "back" in request.POST or not form.is_valid():
        return _form_page(request, form, status=200 if "back" in request.POST else 400)
    try:
        result = balance_adjust(
            organization=request.organization, amount=form.signed_amount,
            reason=form.cleaned_data["reason"], reference=form.cleaned_data["reference"],
            actor=Actor.from_request(request),
            confirm_below_zero=request.POST.get("confirm_below_zero") == "1",
        )
    except ServiceError as error:
        if error.code == "needs_confirmation":
            return _confirm_page(request, form, error=error.message, status=400)
        _apply_service_error(form, error)
        return _form_page(request, form, status=400)
    amount = format_money(result.entry.amount, result.currency)
    if result.created:
        messages.success(request, _("The balance was adjusted by %(amount)s. New balance: "
                                    "%(balance)s.") % {
            "amount": amount, "balance": format_money(result.balance, result.currency)})
    else:
        messages.info(request, _("This adjustment (%(amount)s, reference %(reference)s) was "
                                 "already recorded: nothing changed.") % {
            "amount": amount, "reference": form.cleaned_data["reference"]})
    return redirect("billing_transactions")


@permission("view_billing")
def transactions_export(request):
    # A bare link exports the page's default range.
    form = TransactionsExportForm(request.GET or TransactionsExportForm.initial_range())
    org = request.organization
    if not form.is_valid():
        page = Paginator(sel.ledger_entries(organization=org), 50).get_page(1)
        return render(request, "credits/billing/transactions.html",
                      _context(request, page=page, export_form=form), status=400)
    period = form.period
    if form.cleaned_data["format"] == "csv":
        response = StreamingHttpResponse(
            (chunk.encode("utf-8") for chunk in transactions_csv(organization=org,
                                                                 period=period)),
            content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{export_filename(organization=org, period=period, ext="csv")}"')
        return response
    currency = _context(request)["currency"]
    return FileResponse(
        transactions_xlsx(organization=org, period=period, currency=currency),
        as_attachment=True, content_type=XLSX,
        filename=export_filename(organization=org, period=period, ext="xlsx"))
