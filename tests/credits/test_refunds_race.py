"""Refunds racing on PostgreSQL: concurrent refunds of one purchase never refund more than
its unspent remainder, neither in the ledger nor at the gateway, and concurrent sweeps
settle a pending refund once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from credits.models import CreditNote, LedgerEntry, Refund, SimulatedGatewayRefund
from credits.platform.services import ServiceError
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from credits.services.refunds import refund_request, refunds_settle_pending
from tests.concurrency import run_threads
from tests.conftest import requires_postgres
from tests.credits.test_adjustments_race import assert_ledger_exact
from tests.factories import OrganizationFactory, saved_card


def bought_and_spent(number="4242424242424242"):
    """Buy 100, spend 30: 70 of the purchase is unspent."""
    org = OrganizationFactory()
    attempt = credits_purchase(organization=org, amount=Decimal(100),
                               payment_method=saved_card(org, number), actor="tests")
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key="call:1", amount=Decimal("30.00"), description="call",
        occurred_at=datetime.now(UTC))])
    return org, attempt.invoice


def gateway_refunded(invoice) -> Decimal:
    return (SimulatedGatewayRefund.objects.filter(
        charge__reference=invoice.attempt.gateway_reference, status="succeeded")
        .aggregate(s=Sum("amount"))["s"] or Decimal(0))


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_of_one_purchase_never_exceed_its_unspent_remainder():
    org, invoice = bought_and_spent()
    refused = []

    def refunder(amount, i):
        def run():
            try:
                refund_request(invoice=invoice, amount=amount, reason=f"race {i}",
                               actor="tests")
            except ServiceError as exc:
                assert exc.code in ("above_unspent", "nothing_unspent"), exc.message
                refused.append(i)
        return run

    run_threads([refunder(Decimal(20), i) for i in range(5)]
                + [refunder(None, 10 + i) for i in range(3)])
    refunds = Refund.objects.filter(invoice=invoice, status="succeeded")
    total = refunds.aggregate(s=Sum("amount"))["s"]
    # Whatever the order, the remainder (70) is refunded exactly, never more.
    assert total == Decimal("70.00")
    assert refused and refunds.count() + len(refused) == 8
    ledger = LedgerEntry.objects.filter(organization=org, kind="refund")
    assert -ledger.aggregate(s=Sum("amount"))["s"] == Decimal("70.00")
    assert gateway_refunded(invoice) == Decimal("70.00")
    assert CreditNote.objects.filter(organization=org).count() == refunds.count()
    assert_ledger_exact(org)
    assert ledger.order_by("id").last().balance_after == Decimal("0.00")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_pending_refunds_hold_their_amount_and_concurrent_sweeps_settle_each_once():
    org, invoice = bought_and_spent("4000000000007726")  # every refund times out once

    def refunder(i):
        def run():
            try:
                refund_request(invoice=invoice, amount=Decimal(30), reason=f"late {i}",
                               actor="tests")
            except ServiceError as exc:
                assert exc.code in ("above_unspent", "nothing_unspent"), exc.message
        return run

    run_threads([refunder(i) for i in range(6)])
    pending = Refund.objects.filter(invoice=invoice, status="pending")
    # 70 unspent holds two refunds of 30 while they wait for the gateway.
    assert pending.count() == 2
    later = timezone.now() + timedelta(minutes=10)
    run_threads([lambda: refunds_settle_pending(now=later)] * 4)
    assert Refund.objects.filter(invoice=invoice, status="succeeded").count() == 2
    assert gateway_refunded(invoice) == Decimal("60.00")
    assert LedgerEntry.objects.filter(organization=org, kind="refund").count() == 2
    assert sorted(CreditNote.objects.values_list("number", flat=True)) == [
        f"CN-{timezone.now().year}-000001", f"CN-{timezone.now().year}-000002"]
    assert_ledger_exact(org)
