"""The refund pages: the "Refund" action of an invoice (a form, a confirmation step, then the
refund and its credit note on the invoice page), the credit note's page and PDF, Bills &
payments listing every invoice and credit note, Transactions and its export."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from django.utils import timezone
from pypdf import PdfReader

from credits.models import AuditEntry, CreditAccount, CreditNote, Refund
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from credits.services.refunds import refund_request
from tests.factories import saved_card

pytestmark = pytest.mark.django_db
YEAR = timezone.now().year


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", upn="alex@contoso.test")


@pytest.fixture
def bclient(client, billing_admin):
    client.force_login(billing_admin.user)
    return client


@pytest.fixture
def invoice(org):
    """Buy 100, spend 30: 70 of the purchase can be refunded."""
    attempt = credits_purchase(organization=org, amount=Decimal(100),
                               payment_method=saved_card(org), actor="tests")
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key="call:1", amount=Decimal("30.00"), description="call",
        occurred_at=datetime.now(UTC))])
    return attempt.invoice


def test_the_invoice_offers_refund_to_billing_admins_with_the_remainder_as_default(
        bclient, invoice):
    page = bclient.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert 'data-testid="refund-action"' in page
    assert "Can be refunded now: $70.00" in page
    form = bclient.get(f"/billing/invoices/{invoice.pk}/refund/").content.decode()
    assert 'value="70.00"' in form


def test_a_reader_sees_the_refunds_but_no_refund_action(client, make_person, invoice):
    client.force_login(make_person("global_reader").user)
    page = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert "Refunds" in page and 'data-testid="refund-action"' not in page
    assert client.get(f"/billing/invoices/{invoice.pk}/refund/").status_code == 403
    assert client.post(f"/billing/invoices/{invoice.pk}/refund/confirm/",
                       {"amount": "10", "reason": "x"}).status_code == 403
    assert not Refund.objects.exists()


def test_refund_form_then_confirmation_then_the_invoice_shows_the_refund_and_credit_note(
        bclient, org, invoice):
    url = f"/billing/invoices/{invoice.pk}/refund/"
    confirm = bclient.post(url, {"amount": "25.50", "reason": "Duplicate order",
                                 "request_key": "form-1"})
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Confirm the refund" in text and "$25.50" in text and "$44.50" in text
    assert not Refund.objects.exists()  # nothing refunded before the confirmation
    done = bclient.post(url + "confirm/", {"amount": "25.50", "reason": "Duplicate order",
                                           "request_key": "form-1"}, follow=True)
    page = done.content.decode()
    note = CreditNote.objects.get()
    assert note.number == f"CN-{YEAR}-000001"
    assert f"Credit note {note.number} was issued" in page
    assert note.number in page and "Duplicate order" in page
    assert "Can be refunded now: $44.50" in page
    # The same confirmation sent again refunds once.
    bclient.post(url + "confirm/", {"amount": "25.50", "reason": "Duplicate order",
                                    "request_key": "form-1"})
    assert Refund.objects.count() == 1
    assert CreditAccount.objects.get(organization=org).balance == Decimal("44.50")
    assert AuditEntry.objects.get(action="credits.refund").actor_label == "alex@contoso.test"


def test_more_than_the_remainder_is_refused_on_the_form_naming_the_field(bclient, invoice):
    response = bclient.post(f"/billing/invoices/{invoice.pk}/refund/",
                            {"amount": "70.01", "reason": "too much"})
    assert response.status_code == 400
    assert "At most $70.00 of this purchase can be refunded." in response.content.decode()
    for bad in ("-5", "0", "1.234", "abc"):
        response = bclient.post(f"/billing/invoices/{invoice.pk}/refund/",
                                {"amount": bad, "reason": "x"})
        assert response.status_code == 400 and "Amount to refund" in response.content.decode()
    response = bclient.post(f"/billing/invoices/{invoice.pk}/refund/confirm/",
                            {"amount": "80", "reason": "raced", "request_key": "k"})
    assert response.status_code == 400 and "At most $70.00" in response.content.decode()
    assert not Refund.objects.exists()


def test_a_spent_purchase_says_nothing_can_be_refunded(bclient, org, invoice):
    refund_request(invoice=invoice, reason="all", actor="tests")
    page = bclient.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert 'data-testid="refund-action"' not in page
    assert "Nothing of this purchase can be refunded now" in page
    form = bclient.get(f"/billing/invoices/{invoice.pk}/refund/").content.decode()
    assert 'data-testid="nothing-refundable"' in form


def test_a_failed_refund_shows_why_on_the_invoice(bclient, org):
    attempt = credits_purchase(organization=org, amount=Decimal(100),
                               payment_method=saved_card(org, "4000000000005126"),
                               actor="tests")
    url = f"/billing/invoices/{attempt.invoice.pk}/refund/confirm/"
    page = bclient.post(url, {"amount": "10", "reason": "x", "request_key": "f"},
                        follow=True).content.decode()
    assert "The refund of $10.00 failed" in page
    assert "could not give the money back" in page


def test_the_credit_note_page_and_pdf_reference_the_invoice(bclient, org, invoice):
    refund_request(invoice=invoice, amount="20", reason="Goodwill", actor="tests")
    note = CreditNote.objects.get()
    page = bclient.get(f"/billing/credit-notes/{note.pk}/").content.decode()
    assert note.number in page and invoice.number in page and "$20.00" in page
    assert f"/billing/credit-notes/{note.pk}/pdf" in page
    response = bclient.get(f"/billing/credit-notes/{note.pk}/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(response.content)).pages)
    text = text.replace("\xa0", " ")
    for expected in (note.number, invoice.number, "Goodwill", "Total refunded", "-$20.00"):
        assert expected in text, expected


def test_the_credit_note_pdf_in_french(client, make_person, org, invoice):
    refund_request(invoice=invoice, amount="20", reason="Geste", actor="tests")
    note = CreditNote.objects.get()
    client.force_login(make_person("billing_administrator", preferred_language="fr").user)
    response = client.get(f"/billing/credit-notes/{note.pk}/pdf", HTTP_ACCEPT_LANGUAGE="fr")
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(response.content)).pages)
    assert "Avoir" in text and "Total remboursé" in text


def test_another_organizations_credit_note_is_not_found(client, make_person, other_org,
                                                        invoice):
    refund_request(invoice=invoice, amount="20", reason="x", actor="tests")
    note = CreditNote.objects.get()
    stranger = make_person("global_administrator", organization=other_org)
    client.force_login(stranger.user)
    assert client.get(f"/billing/credit-notes/{note.pk}/").status_code == 404
    assert client.get(f"/billing/credit-notes/{note.pk}/pdf").status_code == 404
    assert client.get(f"/billing/invoices/{invoice.pk}/refund/").status_code == 404


def test_bills_list_every_invoice_and_credit_note_by_number(bclient, org, invoice):
    refund_request(invoice=invoice, amount="20", reason="first", actor="tests")
    refund_request(invoice=invoice, amount="5", reason="second", actor="tests")
    page = bclient.get("/billing/bills/").content.decode()
    assert invoice.number in page
    for number in (f"CN-{YEAR}-000001", f"CN-{YEAR}-000002"):
        assert number in page
    assert f'/billing/invoices/{invoice.pk}/' in page


def test_transactions_and_the_export_show_the_refund_with_its_credit_note_and_actor(
        bclient, billing_admin, org, invoice):
    bclient.post(f"/billing/invoices/{invoice.pk}/refund/confirm/",
                 {"amount": "10", "reason": "Overcharge", "request_key": "t1"})
    note = CreditNote.objects.get()
    page = bclient.get("/billing/communications-credits/transactions/").content.decode()
    assert f"/billing/credit-notes/{note.pk}/" in page and note.number in page
    assert "alex@contoso.test" in page and "Refund of invoice" in page
    today = timezone.now().date()
    response = bclient.get("/billing/communications-credits/transactions/export/", {
        "start": (today - timedelta(days=1)).isoformat(), "end": today.isoformat(),
        "format": "csv"})
    raw = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    [refund_row] = [r for r in rows if r[1] == "Refund"]
    assert refund_row[3:] == ["-10.00", "60.00", note.number, "alex@contoso.test"]


def test_the_invoice_page_in_french_offers_the_refund(client, make_person, invoice):
    client.force_login(make_person("billing_administrator", preferred_language="fr").user)
    page = client.get(f"/billing/invoices/{invoice.pk}/",
                      HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Rembourser" in page and "Remboursable maintenant" in page
