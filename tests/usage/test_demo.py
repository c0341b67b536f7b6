"""seed_demo fills 90 days of calls through the ingestion path, idempotently."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import F, Sum

from credits.models import CreditAccount, LedgerEntry, Organization
from usage.models import CallRecord


@pytest.mark.django_db
def test_seed_demo_fills_90_days_of_rated_calls_once():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    org = Organization.objects.get(slug="contoso")
    calls = CallRecord.objects.filter(organization=org)
    count = calls.count()
    assert 2000 <= count <= 6000, out.getvalue()
    sample = calls.get(graph_id="9c4984c7-6c3c-427d-a30c-bd0b2eacee90")
    assert sample.person.display_name == "Richard Malk"
    paid_by = set(calls.values_list("charged_to", flat=True))
    assert {"plan_pool", "conference_pool", "credits", "free"} <= paid_by
    assert calls.filter(rated=False).exists()
    assert calls.filter(source="demo").count() == count
    usage_total = -LedgerEntry.objects.filter(organization=org, kind="usage").aggregate(
        s=Sum("amount"))["s"]
    charged = calls.aggregate(s=Sum("charge"))["s"]
    assert usage_total.quantize(Decimal("0.01")) == charged.quantize(Decimal("0.01"))

    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert calls.count() == count
    assert f"duplicates {count}" in again.getvalue()
    account = CreditAccount.objects.get(organization=org)
    ledger = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    assert account.balance == ledger.quantize(Decimal("0.01"))  # SQLite sums as floats


def test_demo_outbound_calls_say_domestic_or_international():
    from usage.demo import _context

    assert _context("user_out", "US", "+12125550100") == "Domestic"
    assert _context("user_out", "US", "+14165550100") == "Domestic"  # US <-> Canada
    assert _context("user_out", "FR", "+12125550100") == "International"
    assert _context("user_in", "US", "+12125550100") is None


@pytest.mark.django_db
def test_the_demo_agrees_with_itself():
    """Numbers are valid for their country, so Domestic/International follow them; usage is
    dated when each call ended; every automatic recharge follows the call that took the
    balance below the trigger; pool alerts are dated in their pool's month."""
    import phonenumbers

    from credits.demo_billing import RECHARGE_DELAY, RECHARGE_TRIGGER
    from credits.models import DomainEvent
    from usage.rating import NANP_DOMESTIC

    call_command("seed_demo", stdout=io.StringIO())
    org = Organization.objects.get(slug="contoso")
    calls = CallRecord.objects.filter(organization=org, source="demo", rated=True,
                                      call_type__in=["user_out", "conf_out"])
    assert calls.count() > 500
    for c in calls.exclude(callee_number__contains="*"):
        parsed = phonenumbers.parse(c.callee_number)
        assert phonenumbers.is_valid_number(parsed), c.callee_number
        region = phonenumbers.region_code_for_number(parsed)
        domestic = region == c.usage_country or {region, c.usage_country} <= NANP_DOMESTIC
        assert c.destination_context == ("Domestic" if domestic else "International"), (
            c.callee_number, c.usage_country, c.destination_context)

    ends = {f"call:{c.graph_id}": c.end_at for c in CallRecord.objects.filter(
        organization=org, charge__gt=0)}
    usage = LedgerEntry.objects.filter(organization=org, kind="usage")
    assert usage.count() == len(ends)
    for entry in usage:
        assert entry.occurred_at == ends[entry.idempotency_key]

    ledger = list(LedgerEntry.objects.filter(organization=org).order_by("pk"))
    recharges = [i for i, e in enumerate(ledger) if e.kind == "auto_recharge"]
    assert recharges, "90 days of calls spend more than the first purchase"
    previous = 0
    for i in recharges:
        assert ledger[i - 1].balance_after < RECHARGE_TRIGGER
        crossing = next(e for e in ledger[previous:i] if e.kind == "usage"
                        and e.balance_after < RECHARGE_TRIGGER)
        assert ledger[i].occurred_at == crossing.occurred_at + RECHARGE_DELAY
        assert ledger[i].balance_after >= RECHARGE_TRIGGER
        previous = i
    alerts = DomainEvent.objects.filter(organization=org, name__in=["pool_80", "pool_100"])
    assert alerts.exists()
    for event in alerts:
        assert event.occurred_at.strftime("%Y-%m") == event.payload["month"]


@pytest.mark.django_db
def test_the_demo_reconciliation_differs_only_where_microsofts_price_does():
    """Microsoft reports what credits pay at its list price and 0 for what a plan covers:
    the demo's reconciliation is mostly even, with a few real differences (Mexico, Japan)."""
    from datetime import date

    from django.utils import timezone

    from usage.demo import MICROSOFT_LIST_PRICE
    from usage.reconciliation import reconciliation_for, reconciliation_top_calls
    from usage.report import ReportFilters

    call_command("seed_demo", stdout=io.StringIO())
    org = Organization.objects.get(slug="contoso")
    demo = CallRecord.objects.filter(organization=org, source="demo").exclude(
        graph_id="9c4984c7-6c3c-427d-a30c-bd0b2eacee90")
    assert not demo.filter(reported_charge__isnull=True).exists()
    assert not demo.exclude(charged_to="credits").exclude(reported_charge=0).exists()
    assert demo.filter(charged_to="credits", reported_charge__gt=0).count() > 500
    assert not demo.exclude(reported_capability=F("capability")).exists()

    filters = ReportFilters(start=date(2019, 1, 1), end=timezone.now().date())
    by_place = reconciliation_for(organization=org, filters=filters, group="destination")
    assert by_place.compared.calls == CallRecord.objects.filter(organization=org).count()
    assert not by_place.apart
    differing = {g.key for g in by_place.rows if g.sums.difference != 0}
    assert differing and differing <= set(MICROSOFT_LIST_PRICE), differing
    even = [g for g in by_place.rows if g.sums.difference == 0 and g.sums.reported > 0]
    assert len(even) >= 5  # the US, France, the UK... agree to the cent
    by_day = reconciliation_for(organization=org, filters=filters, group="day")
    assert sum(g.sums.difference == 0 for g in by_day.rows) > len(by_day.rows) / 2
    top = reconciliation_top_calls(organization=org, filters=filters)
    assert top and {t.call.destination_country for t in top} <= set(MICROSOFT_LIST_PRICE)

    call_command("seed_demo", stdout=io.StringIO())  # again: the same sums
    again = reconciliation_for(organization=org, filters=filters, group="destination")
    assert [(g.key, g.sums) for g in again.rows] == [(g.key, g.sums) for g in by_place.rows]
