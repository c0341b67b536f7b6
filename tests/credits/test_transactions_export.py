"""Transactions exported to .xlsx and CSV for a date range, read back: every row of the
ledger in the range, and a balance after that an accountant can reconcile."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.utils import timezone

from credits.models import CreditAccount, Invoice, LedgerEntry
from credits.services.adjustments import balance_adjust
from credits.services.expiry import funds_expire
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from tests.factories import saved_card

CC = "/billing/communications-credits/"
HEADER = ["Date (UTC)", "Type", "Description", "Amount", "Balance after",
          "Invoice or credit note", "Actor"]


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", upn="alex@contoso.test")


@pytest.fixture
def bclient(client, billing_admin):
    client.force_login(billing_admin.user)
    return client


@pytest.fixture
def ledger(org):
    """A purchase, usage in two batches, a credit and a debit adjustment, an expiry."""
    card = saved_card(org)
    purchase = credits_purchase(organization=org, amount=Decimal(100), payment_method=card,
                                actor="alex@contoso.test").ledger_entry
    now = datetime.now(UTC)
    credits_charge_usage_batch(organization=org, charges=[
        UsageCharge(key=f"call:{i}", amount=Decimal("1.25"), description=f"call {i}",
                    occurred_at=now) for i in range(3)])
    balance_adjust(organization=org, amount=Decimal("50"), reason="=HYPERLINK(\"x\")",
                   reference="GW-1", actor="support")
    credits_charge_usage_batch(organization=org, charges=[
        UsageCharge(key="call:9", amount=Decimal("0.10"), description="@SUM(A1)",
                    occurred_at=now)])
    balance_adjust(organization=org, amount=Decimal("-12.34"), reason="correction",
                   reference="FIX-1", actor="support")
    return purchase


def export(client, fmt, start=None, end=None):
    today = timezone.now().date()
    return client.get(CC + "transactions/export/", {
        "start": (start or today - timedelta(days=1)).isoformat(),
        "end": (end or today).isoformat(), "format": fmt})


def assert_balances_chain(rows, org):
    """Each row's balance after = the previous one's + its amount; the last one's is the
    account's balance."""
    for before, row in zip(rows, rows[1:], strict=False):
        assert row["balance"] == before["balance"] + row["amount"]
    assert rows[-1]["balance"] == CreditAccount.objects.get(organization=org).balance


@pytest.mark.django_db
def test_csv_has_a_bom_every_entry_and_exact_balances(bclient, org, ledger):
    response = export(bclient, "csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == HEADER
    rows = [{"kind": r[1], "description": r[2], "amount": Decimal(r[3]),
             "balance": Decimal(r[4]), "document": r[5], "actor": r[6]} for r in table[1:]]
    assert len(rows) == LedgerEntry.objects.filter(organization=org).count() == 7
    assert [r["kind"] for r in rows] == ["Purchase", "Usage", "Usage", "Usage", "Adjustment",
                                         "Usage", "Adjustment"]
    assert [r["amount"] for r in rows] == [Decimal(x) for x in (
        "100.00", "-1.25", "-1.25", "-1.25", "50.00", "-0.10", "-12.34")]
    assert rows[0]["balance"] == Decimal("100.00")
    assert rows[-1]["balance"] == Decimal("133.81")
    assert_balances_chain(rows, org)
    assert rows[0]["document"] == Invoice.objects.get(organization=org).number
    assert rows[0]["actor"] == "alex@contoso.test" and rows[4]["actor"] == "support"
    # Formula injection: text that a spreadsheet would evaluate is quoted.
    assert rows[4]["description"] == "'=HYPERLINK(\"x\") (ref. GW-1)"
    assert rows[5]["description"] == "'@SUM(A1)"
    assert datetime.strptime(table[1][0] + "+0000", "%Y-%m-%d %H:%M:%S%z")  # UTC, plain


@pytest.mark.django_db
def test_xlsx_has_typed_cells_exact_balances_and_a_summary(bclient, org, ledger):
    response = export(bclient, "xlsx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book["Transactions"]
    table = list(sheet.iter_rows(values_only=True))
    assert list(table[0]) == HEADER
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:G8"
    rows = [{"date": r[0], "amount": Decimal(str(r[3])).quantize(Decimal("0.01")),
             "balance": Decimal(str(r[4])).quantize(Decimal("0.01")), "description": r[2],
             "document": r[5] or ""} for r in table[1:]]
    assert len(rows) == 7
    assert isinstance(rows[0]["date"], datetime)
    assert_balances_chain(rows, org)
    assert rows[0]["document"] == Invoice.objects.get(organization=org).number
    # Text cells stay text: no formula in the workbook.
    assert rows[4]["description"] == '=HYPERLINK("x") (ref. GW-1)'
    assert sheet.cell(row=6, column=3).data_type == "s"
    summary = dict(book["Summary"].iter_rows(min_row=2, values_only=True))
    assert Decimal(str(summary["Opening balance"])) == 0
    assert Decimal(str(summary["Closing balance"])).quantize(Decimal("0.01")) == \
        Decimal("133.81")
    assert summary["Transactions"] == 7
    assert Decimal(str(summary["Total: Usage"])).quantize(Decimal("0.01")) == Decimal("-3.85")


@pytest.mark.django_db
def test_a_range_holds_only_its_days_and_its_balances_still_chain(bclient, org, ledger):
    """An expiry written on a later day is outside a range ending today, and a range of
    that day alone opens at the balance the earlier rows left."""
    written = funds_expire(organization=org, now=ledger.expires_at)
    assert written
    today = timezone.now().date()
    raw = b"".join(export(bclient, "csv", start=today - timedelta(days=3),
                          end=today).streaming_content)
    assert len(list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))) == 1 + 7
    day = ledger.expires_at.date()
    response = export(bclient, "xlsx", start=day, end=day)
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    (row,) = list(book["Transactions"].iter_rows(min_row=2, values_only=True))
    assert row[1] == "Expiry"
    summary = dict(book["Summary"].iter_rows(min_row=2, values_only=True))
    assert Decimal(str(summary["Opening balance"])).quantize(Decimal("0.01")) == \
        Decimal("133.81")
    assert Decimal(str(row[4])).quantize(Decimal("0.01")) == \
        CreditAccount.objects.get(organization=org).balance


@pytest.mark.django_db
def test_an_empty_range_gives_the_header_and_the_balance_of_that_date(bclient, org, ledger):
    later = timezone.now().date() + timedelta(days=10)
    raw = b"".join(export(bclient, "csv", start=later, end=later).streaming_content)
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig")))) == [HEADER]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(
        export(bclient, "xlsx", start=later, end=later).streaming_content)))
    summary = dict(book["Summary"].iter_rows(min_row=2, values_only=True))
    assert Decimal(str(summary["Opening balance"])).quantize(Decimal("0.01")) == \
        Decimal("133.81")


@pytest.mark.django_db
@pytest.mark.parametrize(("params", "message"), [
    ({"start": "2026-05-10", "end": "2026-05-01", "format": "csv"},
     "To: choose a date on or after From."),
    ({"start": "10/05/2026", "end": "2026-05-01", "format": "csv"},
     "From: enter a date as YYYY-MM-DD."),
    ({"start": "2024-01-01", "end": "2026-01-01", "format": "xlsx"},
     "To: export at most 366 days at a time."),
    ({"start": "2026-05-01", "end": "2026-05-02", "format": "pdf"},
     "Format: choose Excel or CSV."),
])
def test_a_bad_range_shows_the_page_with_an_error_naming_the_field(bclient, org, params,
                                                                   message):
    response = bclient.get(CC + "transactions/export/", params)
    assert response.status_code == 400
    text = response.content.decode()
    assert "The export was not made:" in text and message in text


@pytest.mark.django_db
def test_the_export_in_french_has_french_headers_and_kinds(client, make_person, org, ledger):
    person = make_person("billing_administrator", preferred_language="fr")
    client.force_login(person.user)
    raw = b"".join(export(client, "csv").streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(raw)))
    assert table[0][0] == "Date (UTC)" and table[0][4] == "Solde après"
    assert table[0][5] == "Facture ou avoir"
    assert table[1][1] == "Achat" and table[5][1] == "Ajustement"


@pytest.mark.django_db
def test_the_transactions_page_offers_the_export_to_billing_readers(client, make_person, org,
                                                                    ledger):
    reader = make_person("teams_administrator")  # view_billing only
    client.force_login(reader.user)
    page = client.get(CC + "transactions/").content.decode()
    assert 'action="/billing/communications-credits/transactions/export/"' in page
    assert "Export to Excel" in page and "Export CSV" in page
    assert export(client, "csv").status_code == 200
    stranger = make_person("teams_communications_support_engineer")
    client.force_login(stranger.user)
    assert export(client, "csv").status_code == 403


@pytest.mark.django_db
def test_markup_in_a_bad_range_is_shown_escaped(bclient, org):
    xss = '"><script>alert(1)</script>'
    response = bclient.get(CC + "transactions/export/", {"start": xss, "end": xss,
                                                         "format": "csv"})
    text = response.content.decode()
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
