"""A credit note as a PDF, built from the invoice PDF's blocks (credits.invoice_pdf): number,
date, seller and buyer, the invoice it corrects, the refunded amount with its tax share, the
card refunded and the reason, in the language asked for."""

from decimal import Decimal
from io import BytesIO

from django.conf import settings
from django.utils import formats, translation
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .invoice_pdf import FACTS_STYLE, parties_table, pdf_date, pdf_text, tax_split
from .models import CreditNote
from .money import ZERO
from .templatetags.money import format_money

__all__ = ["credit_note_pdf", "credit_note_pdf_filename"]


def credit_note_pdf_filename(note: CreditNote) -> str:
    return f"credit-note-{note.number}.pdf"


def credit_note_pdf(note: CreditNote, *, language: str = "en") -> bytes:
    """The credit note's PDF document, its labels, dates and amounts in `language`."""
    with translation.override(language):
        return _build(note, language)


def _build(note: CreditNote, language: str) -> bytes:
    styles = getSampleStyleSheet()
    org = note.organization
    invoice = note.invoice
    refund = note.refund
    card = invoice.attempt.payment_method
    currency = note.currency

    def amount(value) -> str:
        return pdf_text(format_money(value, currency, language))

    def minus(value) -> Decimal:
        return ZERO - value  # never "-0.00"

    net, tax = tax_split(note.amount)
    rate = Decimal(settings.INVOICE_TAX_RATE or 0)
    buffer = BytesIO()
    title = _("Credit note %(number)s") % {"number": note.number}
    doc = SimpleDocTemplate(buffer, pagesize=A4, title=title, author=settings.INVOICE_SELLER_NAME,
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm)
    facts = Table([
        [_("Credit note number"), note.number],
        [_("Credit note date"), pdf_date(note.issued_at)],
        [_("Corrects invoice"), f"{invoice.number} ({pdf_date(invoice.issued_at)})"],
        [_("Refunded to"), _("%(brand)s ending in %(last4)s") % {"brand": card.brand,
                                                                 "last4": card.last4}],
        [_("Refund reference"), refund.gateway_reference or "—"],
    ], colWidths=[50 * mm, 120 * mm], hAlign="LEFT")
    facts.setStyle(FACTS_STYLE)
    parties = parties_table(org, styles)
    line_style = styles["BodyText"]
    product = _("Refund of Communications Credits: %(reason)s") % {"reason": note.reason}
    lines = Table([
        [_("Description"), _("Quantity"), _("Amount")],
        [Paragraph(pdf_text(product), line_style), "1", Paragraph(amount(minus(net)), line_style)],
        ["", _("Subtotal"), Paragraph(amount(minus(net)), line_style)],
        ["", _("%(tax)s (%(rate)s%%)") % {
            "tax": settings.INVOICE_TAX_LABEL,
            "rate": formats.number_format(rate, use_l10n=True)}, Paragraph(amount(minus(tax)),
                                                                           line_style)],
        ["", _("Total refunded"), Paragraph(f"<b>{amount(minus(note.amount))}</b>", line_style)],
    ], colWidths=[95 * mm, 40 * mm, 39 * mm], hAlign="LEFT")
    lines.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTNAME", (1, 4), (1, 4), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (1, 2), (-1, 2), 0.4, colors.grey),
        ("LINEABOVE", (1, 4), (-1, 4), 0.8, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    note_text = _("This credit note cancels %(amount)s of invoice %(invoice)s. The amount was "
                  "taken from the prepaid Communications Credits balance and given back to "
                  "the card.") % {"amount": format_money(note.amount, currency, language),
                                  "invoice": invoice.number}
    doc.build([
        Paragraph(pdf_text(title), styles["Title"]),
        parties, Spacer(1, 6 * mm), facts, Spacer(1, 8 * mm), lines, Spacer(1, 8 * mm),
        Paragraph(pdf_text(note_text), styles["Italic"]),
    ])
    return buffer.getvalue()
