"""Invoices an accountant accepts: a gapless number series per calendar year, seller and
buyer, and a real PDF in the person's language."""

import importlib
import re
import threading
from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO

import pytest
from django.apps import apps as django_apps
from django.db import connection, transaction
from django.utils.formats import date_format
from pypdf import PdfReader

from credits.invoice_pdf import invoice_pdf
from credits.models import Invoice, InvoiceSequence
from credits.services.invoices import invoice_number_next
from credits.services.purchases import credits_purchase
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, saved_card


def pdf_text(content: bytes) -> str:
    reader = PdfReader(BytesIO(content))
    # Extraction keeps no-break spaces; compare on plain spaces.
    return "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")


def buy(org, amount="150", card=None):
    attempt = credits_purchase(organization=org, amount=amount,
                               payment_method=card or saved_card(org), actor="tests")
    assert attempt.status == "succeeded", attempt.reason
    return attempt.invoice


@pytest.fixture
def reader_client(client, make_person):
    client.force_login(make_person("global_reader").user)
    return client


@pytest.mark.django_db
def test_the_pdf_carries_number_seller_buyer_lines_total_card_and_expiry(
        client, make_person, org, settings):
    settings.INVOICE_SELLER_NAME = "Northwind Telecom SA"
    settings.INVOICE_SELLER_TAX_ID = "FR12345678901"
    org.legal_name, org.tax_id = "Contoso Holdings Ltd", "GB999999973"
    org.billing_address = "10 High Street\nLondon"
    org.save()
    client.force_login(make_person("billing_administrator").user)
    invoice = buy(org)
    response = client.get(f"/billing/invoices/{invoice.pk}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    expires = invoice.ledger_entry.expires_at
    for expected in [invoice.number, "Northwind Telecom SA", "FR12345678901",
                     "Contoso Holdings Ltd", "10 High Street", "GB999999973",
                     "Communications Credits purchase", "Total paid", "$150.00", "VAT (0%)",
                     "$0.00", "Visa ending in 4242", "Credits expire",
                     date_format(expires, "DATE_FORMAT")]:
        assert expected in text, expected
    assert (expires - invoice.issued_at).days == 365
    page = client.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert f'href="/billing/invoices/{invoice.pk}/pdf"' in page


@pytest.mark.django_db
def test_the_french_pdf_has_french_labels_dates_and_amounts(client, make_person, org):
    client.force_login(make_person("billing_administrator", preferred_language="fr").user)
    invoice = buy(org, amount="1234")
    text = pdf_text(client.get(f"/billing/invoices/{invoice.pk}/pdf").content)
    for expected in ["Facture", "Vendeur", "Facturé à", "Total payé", "Payé avec",
                     "Visa se terminant par 4242", "Expiration des crédits",
                     "1 234,00 $US", invoice.number]:
        assert expected in text, expected
    assert "Total paid" not in text and "$1,234.00" not in text
    month = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
             "septembre", "octobre", "novembre", "décembre"][invoice.issued_at.month - 1]
    assert month in text


@pytest.mark.django_db
def test_a_configured_tax_is_shown_inside_the_total(org, settings):
    settings.INVOICE_TAX_RATE = Decimal("20")
    settings.INVOICE_TAX_LABEL = "VAT"
    text = pdf_text(invoice_pdf(buy(org, amount="120"), language="en"))
    assert "VAT (20%)" in text and "$20.00" in text and "$100.00" in text
    assert "$120.00" in text


@pytest.mark.django_db
def test_another_organizations_invoice_pdf_is_not_found(reader_client, other_org):
    invoice = buy(other_org)
    assert reader_client.get(f"/billing/invoices/{invoice.pk}/pdf").status_code == 404
    assert reader_client.get("/billing/invoices/999999/pdf").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("name", [
    "<b>Acme & Co</b>", "Société Générale d'Électricité", "日本電信株式会社", "😀 Emoji Inc",
    "A" * 200, "Line\nBreak", "\u202fnarrow\u00a0space",
])
def test_odd_buyer_names_never_break_the_pdf(org, name):
    org.name = name
    org.billing_address = name
    org.save()
    content = invoice_pdf(buy(org), language="fr")
    assert content.startswith(b"%PDF-")
    assert buy(org).number in pdf_text(invoice_pdf(Invoice.objects.first(), language="en"))


@pytest.mark.django_db
def test_numbers_are_consecutive_within_a_year_and_restart_the_next(org):
    year = datetime.now(UTC).year
    card = saved_card(org)
    numbers = [buy(org, card=card).number for _ in range(3)]
    assert numbers == [f"{year}-000001", f"{year}-000002", f"{year}-000003"]
    with transaction.atomic():
        assert invoice_number_next(year=year + 1) == f"{year + 1}-000001"
        assert invoice_number_next(year=year + 1) == f"{year + 1}-000002"
    assert buy(org, card=card).number == f"{year}-000004"


@pytest.mark.django_db
def test_a_rolled_back_invoice_gives_its_number_back(org):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        assert invoice_number_next(year=2031) == "2031-000001"
        raise Boom
    with transaction.atomic():
        assert invoice_number_next(year=2031) == "2031-000001"


@pytest.mark.django_db
def test_a_number_is_taken_only_inside_a_transaction(django_db_blocker):
    # pytest-django wraps each test in a transaction; leave it to see the check.
    with transaction.atomic():
        pass
    connection.in_atomic_block, saved = False, connection.in_atomic_block
    try:
        with pytest.raises(RuntimeError):
            invoice_number_next(year=2031)
    finally:
        connection.in_atomic_block = saved


@pytest.mark.django_db
def test_the_migration_continues_new_series_and_keeps_old_numbers(org):
    migration = importlib.import_module("credits.migrations.0004_invoice_numbering")
    card = saved_card(org)
    old = buy(org, card=card)
    Invoice.objects.filter(pk=old.pk).update(number="CC-2025-00000042")
    newer = buy(org, card=card)
    Invoice.objects.filter(pk=newer.pk).update(number="2024-000017")
    InvoiceSequence.objects.all().delete()
    migration.start_series_after_existing(django_apps, None)
    assert dict(InvoiceSequence.objects.values_list("year", "last")) == {2024: 17}
    assert Invoice.objects.get(pk=old.pk).number == "CC-2025-00000042"
    with transaction.atomic():
        assert invoice_number_next(year=2024) == "2024-000018"
        assert invoice_number_next(year=2025) == "2025-000001"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_purchases_get_gapless_unique_numbers():
    orgs = [OrganizationFactory() for _ in range(4)]
    cards = {org.pk: saved_card(org) for org in orgs}
    per_thread = 4
    barrier = threading.Barrier(len(orgs) * 2)
    errors = []

    def run(org):
        try:
            barrier.wait(30)
            for _ in range(per_thread):
                buy(org, amount="50", card=cards[org.pk])
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    # Two threads per organization: the same account and different accounts race.
    threads = [threading.Thread(target=run, args=(org,)) for org in orgs for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    total = len(orgs) * 2 * per_thread
    year = datetime.now(UTC).year
    assert numbers == [f"{year}-{n:06d}" for n in range(1, total + 1)]
    assert InvoiceSequence.objects.get(year=year).last == total
    assert all(re.fullmatch(r"\d{4}-\d{6}", n) for n in numbers)
