"""seed_demo fills 90 days of calls through the ingestion path, idempotently."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

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
