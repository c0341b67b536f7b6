"""Adjustments racing on PostgreSQL: one reference adjusts once, and debits racing usage
never break the ledger (balance == sum of entries, each balance after = the previous one's
plus its amount, no unconfirmed debit below zero)."""

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from credits.models import AuditEntry, CreditAccount, LedgerEntry
from credits.platform.services import ServiceError
from credits.services.adjustments import balance_adjust
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from tests.concurrency import run_threads
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, funded_account


def assert_ledger_exact(org):
    account = CreditAccount.objects.get(organization=org)
    total = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    assert account.balance == total
    previous = Decimal("0.00")
    for amount, after in LedgerEntry.objects.filter(organization=org).order_by("id") \
            .values_list("amount", "balance_after"):
        assert after == previous + amount
        previous = after
    assert previous == account.balance


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_with_one_reference_write_one_entry():
    org = OrganizationFactory()
    funded_account(org, "10.00")
    results = []

    def adjuster():
        results.append(balance_adjust(organization=org, amount=Decimal("25.00"),
                                      reason="goodwill", reference="SUP-RACE",
                                      actor="support"))

    run_threads([adjuster] * 8)
    entries = LedgerEntry.objects.filter(organization=org, idempotency_key="adjustment:SUP-RACE")
    assert entries.count() == 1
    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert {r.entry.pk for r in results} == {entries.get().pk}
    assert CreditAccount.objects.get(organization=org).balance == Decimal("35.00")
    assert AuditEntry.objects.filter(action="credits.adjust",
                                     target_id=str(entries.get().pk)).count() == 1
    assert_ledger_exact(org)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_and_usage_keep_the_ledger_exact():
    org = OrganizationFactory()
    funded_account(org, "100.00")
    refused = []

    def debiter(seed):
        def run():
            rng = random.Random(seed)
            for i in range(10):
                try:
                    balance_adjust(organization=org, amount=-Decimal(rng.choice(["3", "7.5"])),
                                   reason="correction", reference=f"D-{seed}-{i}",
                                   actor="support")
                except ServiceError as exc:
                    assert exc.code == "needs_confirmation"
                    refused.append(f"D-{seed}-{i}")
        return run

    def spender(seed):
        def run():
            now = datetime.now(UTC)
            for i in range(10):
                credits_charge_usage_batch(organization=org, charges=[UsageCharge(
                    key=f"call:{seed}:{i}", amount=Decimal("2.25"), description="",
                    occurred_at=now)])
        return run

    run_threads([debiter(s) for s in range(4)] + [spender(s) for s in range(4)])
    assert LedgerEntry.objects.filter(organization=org, kind="usage").count() == 40
    debits = LedgerEntry.objects.filter(organization=org, kind="adjustment", amount__lt=0)
    # 40 debits of 3 or 7.50 cannot all fit in 100: some were refused, none went below 0.
    assert refused
    assert debits.count() + len(refused) == 40
    assert not debits.filter(balance_after__lt=0).exists()
    assert_ledger_exact(org)
