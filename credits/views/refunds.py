"""Refunds and credit notes: the refund form of an invoice (then a confirmation step), a
credit note's page and its PDF. Views validate and call one service."""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..credit_note_pdf import credit_note_pdf, credit_note_pdf_filename
from ..forms.refunds import RefundForm
from ..models import CreditNote, Invoice, RefundStatus
from ..platform.access import permission
from ..platform.services import Actor, ServiceError
from ..selectors import billing as sel
from ..selectors import refunds as refund_sel
from ..services.refunds import refund_request
from ..templatetags.money import format_money
from .billing import _apply_service_error, _context


def _invoice(request, pk) -> Invoice:
    try:
        return sel.invoice_get(organization=request.organization, pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc


def _form_page(request, invoice, form, status=200):
    state = refund_sel.invoice_refund_state(invoice=invoice)
    return render(request, "credits/billing/refund.html", _context(
        request, invoice=invoice, form=form, state=state), status=status)


@permission("manage_billing")
def invoice_refund(request, pk):
    invoice = _invoice(request, pk)
    state = refund_sel.invoice_refund_state(invoice=invoice)
    form = RefundForm(request.POST or None, refundable=state.refundable)
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["amount"] > state.refundable:
            form.add_error("amount", _("At most %(max)s of this purchase can be refunded.")
                           % {"max": format_money(state.refundable, invoice.currency)})
        else:
            # The confirmation step: nothing is refunded until the person confirms.
            ctx = _context(request, invoice=invoice, form=form, data=form.cleaned_data,
                           state=state)
            ctx["balance_after"] = ctx["balance"] - form.cleaned_data["amount"]
            return render(request, "credits/billing/refund_confirm.html", ctx)
    return _form_page(request, invoice, form, status=400 if form.is_bound else 200)


@permission("manage_billing")
@require_POST
def invoice_refund_confirm(request, pk):
    invoice = _invoice(request, pk)
    form = RefundForm(request.POST)
    if "back" in request.POST or not form.is_valid():
        return _form_page(request, invoice, form, status=200 if "back" in request.POST else 400)
    data = form.cleaned_data
    try:
        refund = refund_request(invoice=invoice, amount=data["amount"], reason=data["reason"],
                                request_key=data["request_key"],
                                actor=Actor.from_request(request))
    except ServiceError as error:
        _apply_service_error(form, error)
        return _form_page(request, invoice, form, status=400)
    amount = format_money(refund.amount, refund.currency)
    if refund.status == RefundStatus.SUCCEEDED:
        messages.success(request, _("%(amount)s was refunded to %(card)s. Credit note "
                                    "%(number)s was issued.") % {
            "amount": amount, "card": invoice.card_label,
            "number": refund.credit_note.number})
    elif refund.status == RefundStatus.PENDING:
        messages.warning(request, _("The refund of %(amount)s is in progress: the payment "
                                    "provider has not answered yet. It is settled "
                                    "automatically; do not refund again.") % {"amount": amount})
    else:
        messages.error(request, _("The refund of %(amount)s failed: %(reason)s") % {
            "amount": amount, "reason": refund.failure_reason})
    return redirect("billing_invoice", pk=invoice.pk)


def _credit_note(request, pk) -> CreditNote:
    try:
        return refund_sel.credit_note_get(organization=request.organization, pk=pk)
    except CreditNote.DoesNotExist as exc:
        raise Http404 from exc


@permission("view_billing")
def credit_note_detail(request, pk):
    note = _credit_note(request, pk)
    return render(request, "credits/billing/credit_note.html", _context(request, note=note))


@permission("view_billing")
def credit_note_pdf_download(request, pk):
    note = _credit_note(request, pk)
    document = credit_note_pdf(note, language=get_language() or "en")
    response = HttpResponse(document, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{credit_note_pdf_filename(note)}"'
    return response
