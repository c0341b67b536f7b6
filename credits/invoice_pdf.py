"""An invoice as a PDF (ReportLab, pure Python): number, dates, seller (settings), buyer
(the organization), lines, tax, total, the card paid with and when the credits expire, in
the language asked for."""

from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .models import Invoice
from .money import CENT, ZERO
from .templatetags.countries import country_name
from .templatetags.money import format_money

__all__ = ["invoice_pdf", "invoice_pdf_filename"]


def invoice_pdf_filename(invoice: Invoice) -> str:
    return f"invoice-{invoice.number}.pdf"


def pdf_text(value) -> str:
    # The standard PDF fonts have no narrow no-break space (French digit grouping).
    return escape(str(value)).replace("\u202f", "\xa0")


def pdf_lines(value: str) -> str:
    return "<br/>".join(pdf_text(line) for line in str(value).splitlines() if line.strip())


def pdf_date(value) -> str:
    return formats.date_format(timezone.localtime(value), "DATE_FORMAT") if value else "—"


def tax_split(total: Decimal) -> tuple[Decimal, Decimal]:
    """(net, tax) of a tax-inclusive total at INVOICE_TAX_RATE percent."""
    rate = Decimal(settings.INVOICE_TAX_RATE or 0)
    if rate <= 0:
        return total, ZERO
    net = (total * 100 / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
    return net, total - net


def party(title: str, name: str, address: str, tax_id: str, styles) -> list:
    body = f"<b>{pdf_text(name)}</b>"
    if address:
        body += "<br/>" + pdf_lines(address)
    if tax_id:
        body += "<br/>" + pdf_text(_("Tax ID: %(id)s") % {"id": tax_id})
    return [Paragraph(f"<b>{pdf_text(title)}</b>", styles["Heading4"]),
            Paragraph(body, styles["BodyText"])]


# The blocks an invoice and a credit note share (credits.credit_note_pdf).
FACTS_STYLE = TableStyle([("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold"),
                          ("BOTTOMPADDING", (0, 0), (-1, -1), 2)])


def parties_table(org, styles) -> Table:
    """Seller (this deployment's operator, from settings) beside the buyer (the
    organization's billing profile)."""
    buyer_address = org.billing_address
    if org.billing_region:
        buyer_address = "\n".join(filter(None, [buyer_address, country_name(org.billing_region)]))
    parties = Table([[
        party(_("Seller"), settings.INVOICE_SELLER_NAME, settings.INVOICE_SELLER_ADDRESS,
              settings.INVOICE_SELLER_TAX_ID, styles),
        party(_("Bill to"), org.legal_name or org.name, buyer_address, org.tax_id, styles),
    ]], colWidths=[87 * mm, 87 * mm], hAlign="LEFT")
    parties.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                 ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return parties


def invoice_pdf(invoice: Invoice, *, language: str = "en") -> bytes:
    """The invoice's PDF document, its labels, dates and amounts in `language`."""
    with translation.override(language):
        return _build(invoice, language)


def _build(invoice: Invoice, language: str) -> bytes:
    styles = getSampleStyleSheet()
    org = invoice.organization
    attempt = invoice.attempt
    card = attempt.payment_method
    currency = invoice.currency

    def amount(value) -> str:
        return pdf_text(format_money(value, currency, language))

    net, tax = tax_split(invoice.amount)
    rate = Decimal(settings.INVOICE_TAX_RATE or 0)
    buffer = BytesIO()
    title = _("Invoice %(number)s") % {"number": invoice.number}
    doc = SimpleDocTemplate(buffer, pagesize=A4, title=title, author=settings.INVOICE_SELLER_NAME,
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm)
    rows = [
        [_("Invoice number"), invoice.number],
        [_("Invoice date"), pdf_date(invoice.issued_at)],
        [_("Payment date"), pdf_date(attempt.completed_at or invoice.issued_at)],
        [_("Paid with"), _("%(brand)s ending in %(last4)s") % {"brand": card.brand,
                                                               "last4": card.last4}],
        [_("Payment reference"), attempt.gateway_reference or "—"],
        [_("Credits expire"), pdf_date(invoice.ledger_entry.expires_at)],
    ]
    if attempt.po_number:
        rows.insert(1, [_("PO number"), attempt.po_number])
    facts = Table(rows, colWidths=[50 * mm, 120 * mm], hAlign="LEFT")
    facts.setStyle(FACTS_STYLE)
    parties = parties_table(org, styles)
    product = (_("Communications Credits purchase") if attempt.kind == "purchase"
               else _("Communications Credits auto-recharge"))
    line_style = styles["BodyText"]
    lines = Table([
        [_("Description"), _("Quantity"), _("Amount")],
        [Paragraph(pdf_text(product), line_style), "1", Paragraph(amount(net), line_style)],
        ["", _("Subtotal"), Paragraph(amount(net), line_style)],
        ["", _("%(tax)s (%(rate)s%%)") % {
            "tax": settings.INVOICE_TAX_LABEL,
            "rate": formats.number_format(rate, use_l10n=True)}, Paragraph(amount(tax),
                                                                           line_style)],
        ["", _("Total paid"), Paragraph(f"<b>{amount(invoice.amount)}</b>", line_style)],
    ], colWidths=[95 * mm, 40 * mm, 39 * mm], hAlign="LEFT")
    lines.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("FONTNAME", (1, 4), (1, 4), "Helvetica-Bold"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEABOVE", (1, 2), (-1, 2), 0.4, colors.grey),
        ("LINEABOVE", (1, 4), (-1, 4), 0.8, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    note = _("Prepaid Communications Credits. Credits not used by %(date)s expire.") % {
        "date": pdf_date(invoice.ledger_entry.expires_at)}
    doc.build([
        Paragraph(pdf_text(title), styles["Title"]),
        parties, Spacer(1, 6 * mm), facts, Spacer(1, 8 * mm), lines, Spacer(1, 8 * mm),
        Paragraph(pdf_text(note), styles["Italic"]),
    ])
    return buffer.getvalue()
