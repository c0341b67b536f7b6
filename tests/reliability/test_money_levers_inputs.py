"""The billing admin's new levers (adjustments, refunds, spend limits, auto-recharge's target
and daily cap, the PO number) against odd input: each answer is a page, never a server
error, and a refused value changes nothing (no ledger entry, no refund, no setting)."""

from decimal import Decimal
from urllib.parse import urlencode

import pytest

from credits.models import CreditAccount, LedgerEntry
from credits.models.refunds import Refund
from credits.services.purchases import credits_purchase
from tests.factories import saved_card

pytestmark = pytest.mark.django_db

CC = "/billing/communications-credits/"
ODD = ["", "   ", "-0", "1e3", "NaN", "Infinity", "９９", "١٠", "9" * 40, "12.345", "50\x00",
       "\ud800", "<script>", "0x10", "1_000"]
ODD_TEXT = ["", " ", "x\x00y", "lone \ud800 surrogate", "é" * 5000, "<b>bold</b>",
            "=HYPERLINK(\"http://x\")", "\u202eevil"]


def _state(org):
    account = CreditAccount.objects.get(organization=org)
    return (LedgerEntry.objects.filter(organization=org).count(), account.balance,
            Refund.objects.filter(organization=org).count(), account.monthly_spend_limit,
            account.auto_recharge_enabled, account.auto_recharge_target,
            account.auto_recharge_daily_cap)


@pytest.fixture
def bought(org, admin_client, admin_person):
    card = saved_card(org)
    attempt = credits_purchase(organization=org, amount=Decimal(100), payment_method=card,
                               actor=admin_person)
    return admin_client, card, attempt.invoice


def _post(client, url, data):
    """As a browser sends a form: UTF-8 bytes, where a lone surrogate is three bytes that
    are not valid UTF-8 (Django decodes them to U+FFFD)."""
    body = urlencode(data, doseq=True, encoding="utf-8", errors="surrogatepass")
    return client.post(url, body, content_type="application/x-www-form-urlencoded")


def _forms(card, invoice):
    """url -> a function of (money value, text value) giving a submission."""
    return {
        f"{CC}adjust-balance/": lambda v, t: {"direction": "credit", "amount": v,
                                              "reason": t or "goodwill", "reference": "R-1"},
        f"{CC}adjust-balance/confirm/": lambda v, t: {
            "direction": "debit", "amount": v, "reason": "fix", "reference": t or "R-2"},
        f"/billing/invoices/{invoice.pk}/refund/confirm/": lambda v, t: {
            "amount": v, "reason": t or "dup", "request_key": "k-odd"},
        f"{CC}spend-limit/": lambda v, t: {"monthly_limit": v},
        f"{CC}auto-recharge/": lambda v, t: {
            "enabled": "on", "mode": "target_balance", "target": v, "trigger": "50",
            "daily_cap": v, "payment_method": card.pk, "po_number": t},
        f"{CC}add-funds/": lambda v, t: {"amount": "100", "payment_method": card.pk,
                                         "po_number": t},
    }


@pytest.mark.parametrize("value", ODD)
def test_odd_amounts_are_refused_on_a_page_and_change_nothing(bought, org, value):
    client, card, invoice = bought
    before = _state(org)
    for url, data in _forms(card, invoice).items():
        response = _post(client, url, data(value, "ok"))
        assert response.status_code in (200, 302, 400), (url, response.status_code)
    assert _state(org) == before


@pytest.mark.parametrize("text", ODD_TEXT)
def test_odd_text_gets_a_page_never_a_server_error(bought, org, text):
    client, card, invoice = bought
    for url, data in _forms(card, invoice).items():
        response = _post(client, url, data("1", text))
        assert response.status_code in (200, 302, 400), (url, repr(text)[:40],
                                                         response.status_code)
        page = response.content.decode()
        assert "<b>bold</b>" not in page  # escaped wherever it is shown again
        if "\x00" in text and "po_number" in data("1", text):
            assert "PO number: use letters, digits and punctuation only." in page
    # A NUL is never stored as a reason, a reference or a PO number.
    for entry in LedgerEntry.objects.filter(organization=org):
        assert "\x00" not in entry.description
    account = CreditAccount.objects.get(organization=org)
    assert "\x00" not in (account.auto_recharge_po_number or "")
    # (Compared in Python: SQLite's LIKE stops at a NUL and would match every row.)
    assert all("\x00" not in reason
               for reason in Refund.objects.filter(organization=org).values_list("reason",
                                                                                 flat=True))
