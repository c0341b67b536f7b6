"""Worked examples of refunds, with the figures written out. What of a purchase can be
refunded is its unspent remainder: the oldest credits are spent first (DESIGN.md section
4), a refund takes from its own purchase, and expired credits cannot be refunded."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from credits.models import CreditAccount, LedgerEntry
from credits.platform.services import ServiceError
from credits.selectors.refunds import invoice_refund_state
from credits.services.adjustments import balance_adjust
from credits.services.expiry import funds_expire
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from credits.services.refunds import refund_request
from tests.factories import saved_card

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def card(org):
    return saved_card(org)


def buy(org, card, amount):
    return credits_purchase(organization=org, amount=D(amount), payment_method=card,
                            actor="tests").invoice


def spend(org, amount, key):
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=key, amount=D(amount), description="call", occurred_at=datetime.now(UTC))])


def refundable(invoice):
    invoice.refresh_from_db()
    return invoice_refund_state(invoice=invoice).refundable


def balance(org):
    return CreditAccount.objects.get(organization=org).balance


def refund(invoice, amount=None):
    return refund_request(invoice=invoice, amount=amount, reason="worked example",
                          actor="tests")


def test_buy_100_spend_30_refund_the_70_then_nothing_is_left(org, card):
    """Buy 100, spend 30: 70 can be refunded. Refund it: the balance is 0.00 and a second
    refund is refused."""
    invoice = buy(org, card, 100)
    spend(org, "30.00", "a")
    assert refundable(invoice) == D("70.00")
    assert refund(invoice).amount == D("70.00")
    assert balance(org) == D("0.00")
    with pytest.raises(ServiceError) as info:
        refund(invoice)
    assert info.value.code == "nothing_unspent"


def test_two_purchases_100_and_50_with_120_spent_leave_30_of_the_second(org, card):
    """Buy 100, then 50; spend 120. First in, first out: the first purchase is spent in
    full (0 refundable), 20 of the second is spent and 30 is left. Refund the 30: balance
    0.00."""
    first = buy(org, card, 100)
    second = buy(org, card, 50)
    spend(org, "120.00", "a")
    assert balance(org) == D("30.00")
    assert refundable(first) == D("0.00")
    assert refundable(second) == D("30.00")
    with pytest.raises(ServiceError) as info:
        refund(first, "1")
    assert "were all spent or refunded" in info.value.message
    refund(second)
    assert balance(org) == D("0.00")


def test_partial_refunds_of_200_with_50_spent(org, card):
    """Buy 200, spend 50: 150 refundable. Refund 40: balance 110.00, 110 refundable. Refund
    110.01: refused. Refund 110: balance 0.00; 200 = 50 spent + 40 + 110 refunded."""
    invoice = buy(org, card, 200)
    spend(org, "50.00", "a")
    refund(invoice, "40")
    assert balance(org) == D("110.00") and refundable(invoice) == D("110.00")
    with pytest.raises(ServiceError):
        refund(invoice, "110.01")
    refund(invoice, "110")
    assert balance(org) == D("0.00")
    refunds = LedgerEntry.objects.filter(organization=org, kind="refund")
    assert sorted(refunds.values_list("amount", flat=True)) == [D("-110.00"), D("-40.00")]


def test_a_goodwill_credit_is_spent_before_a_later_purchase(org, card):
    """Credit +50 (a goodwill adjustment, a lot of its own), then buy 100, spend 80: the
    credit is spent first (50), then 30 of the purchase: 70 of it can be refunded."""
    balance_adjust(organization=org, amount=D("50"), reason="goodwill", reference="GW-1",
                   actor="support")
    invoice = buy(org, card, 100)
    spend(org, "80.00", "a")
    assert balance(org) == D("70.00")
    assert refundable(invoice) == D("70.00")
    refund(invoice)
    assert balance(org) == D("0.00")


def test_spending_after_a_refund_uses_what_is_left_and_then_nothing_is_refundable(org, card):
    """Buy 100, refund 40: balance 60.00, 60 refundable. Spend 60: balance 0.00, nothing
    left to refund."""
    invoice = buy(org, card, 100)
    refund(invoice, "40")
    assert balance(org) == D("60.00") and refundable(invoice) == D("60.00")
    spend(org, "60.00", "a")
    assert balance(org) == D("0.00") and refundable(invoice) == D("0.00")


def test_refunding_the_newer_purchase_leaves_the_older_ones_70_to_expire(org, card):
    """Buy 100, then 50; spend 30 (from the first). Refund the second's 50: balance 70.00.
    At the first purchase's expiry its 70 expire (the refund took from the second, not from
    the first): balance 0.00. After its expiry nothing of it can be refunded."""
    first = buy(org, card, 100)
    second = buy(org, card, 50)
    spend(org, "30.00", "a")
    assert refundable(first) == D("70.00") and refundable(second) == D("50.00")
    refund(second)
    assert balance(org) == D("70.00") and refundable(first) == D("70.00")
    expired_at = first.ledger_entry.expires_at + timedelta(minutes=1)
    [expiry] = funds_expire(organization=org, now=expired_at)
    assert expiry.amount == D("-70.00") and balance(org) == D("0.00")
    with pytest.raises(ServiceError) as info:
        refund_request(invoice=first, reason="late", actor="tests", now=expired_at)
    assert "expired on" in info.value.message
