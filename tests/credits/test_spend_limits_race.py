"""Spend limits under concurrency on PostgreSQL: ingestion batches that cross a limit at
the same time tell it exactly once, and the counters equal the month's usage entries."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from credits.models import DomainEvent, LedgerEntry, SpendCounter
from credits.services.spend_limits import person_spend_limit_set, spend_limit_set
from tests.concurrency import run_threads
from tests.conftest import requires_postgres
from tests.factories import (
    TEST_DECK_CSV,
    OrganizationFactory,
    PersonFactory,
    funded_account,
    give_licenses,
    graph_row,
    load_test_deck,
)
from usage.services import calls_ingest

DECK = TEST_DECK_CSV + "outbound,34,Spain,ES,landline,0.05000,0.00,60,60,USD,2026-01-01\n"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_crossing_the_limits_notify_each_level_once():
    org = OrganizationFactory()
    load_test_deck(org, DECK)
    funded_account(org, "1000.00")
    people = [PersonFactory(organization=org, usage_location="US") for _ in range(4)]
    for p in people:
        give_licenses(p, "MCOEV", "MCOPSTN1", "MCOPSTNC")
    from credits.models import LicenseAssignment
    LicenseAssignment.objects.filter(organization=org).update(
        assigned_at=datetime(2026, 10, 1, tzinfo=UTC))
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    for p in people:
        person_spend_limit_set(person=p, monthly_limit="10", actor="test")

    def batch(worker):
        def go():
            # 10 calls of 30 min to Spain (1.50 each) per batch, 8 batches: 120.00 in all;
            # people 0 and 1 get 3 calls a batch (36.00), 2 and 3 get 2 (24.00): each
            # crosses 80 % and 100 % of their 10.00 limit, in batches racing each other.
            rows = [graph_row(f"race-{worker}-{i}", userPrincipalName=people[i % 4].upn,
                              calleeNumber="+34912345678", duration=1800,
                              startDateTime=f"2026-11-0{1 + worker % 8}T10:{i:02d}:00Z")
                    for i in range(10)]
            calls_ingest(organization=org, rows=rows, source="api")
        return go

    run_threads([batch(w) for w in range(8)])
    counts = dict(DomainEvent.objects.filter(organization=org).filter(
        name__contains="limit_").values_list("name").annotate(n=Sum(1)).values_list("name", "n"))
    assert counts == {"spend_limit_80": 1, "spend_limit_100": 1,
                      "person_limit_80": 4, "person_limit_100": 4}
    per_person = DomainEvent.objects.filter(organization=org, name="person_limit_100")
    assert sorted(e.payload["person_id"] for e in per_person) == sorted(p.pk for p in people)
    usage = -LedgerEntry.objects.filter(organization=org, kind="usage").aggregate(
        s=Sum("amount"))["s"]
    assert usage == Decimal("120.00")
    org_counter = SpendCounter.objects.get(organization=org, person_key=0)
    assert org_counter.spent == usage
    per_person_spent = sorted(SpendCounter.objects.filter(organization=org)
                              .exclude(person_key=0).values_list("spent", flat=True))
    assert per_person_spent == [Decimal("24.00")] * 2 + [Decimal("36.00")] * 2
