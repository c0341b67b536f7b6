"""Funds expire 12 months after purchase, first in, first out, computed from totals."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from credits.models import CreditAccount, DomainEvent, LedgerEntry, LedgerEntryImmutable
from credits.services.expiry import funds_expire, funds_expiring_notify
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from credits.tasks import expire_funds
from tests.factories import funded_account, saved_card

ACTOR = "tests"


def buy(org, card, amount):
    attempt = credits_purchase(organization=org, amount=Decimal(amount),
                               payment_method=card, actor=ACTOR)
    return attempt.ledger_entry


def spend(org, key, amount):
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=key, amount=Decimal(amount), description="", occurred_at=datetime.now(UTC))])


def consistent(org):
    total = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    return total == CreditAccount.objects.get(organization=org).balance


@pytest.mark.django_db
def test_unused_part_of_the_oldest_lot_expires_first(org):
    card = saved_card(org)
    lot1 = buy(org, card, 100)
    lot2 = buy(org, card, 100)
    spend(org, "u1", "70")           # FIFO: all from lot1, which keeps 30
    later = lot1.expires_at  # lot2 was bought a moment later: not yet due
    written = funds_expire(organization=org, now=later)
    assert [(e.expired_lot_id, e.amount) for e in written] == [(lot1.pk, Decimal("-30.00"))]
    assert CreditAccount.objects.get(organization=org).balance == Decimal("100.00")
    assert consistent(org)
    # Usage after lot1's expiry drains lot2; at its expiry 100 - 50 = 50 remain.
    spend(org, "u2", "50")
    written = funds_expire(organization=org, now=lot2.expires_at + timedelta(hours=1))
    assert [(e.expired_lot_id, e.amount) for e in written] == [(lot2.pk, Decimal("-50.00"))]
    assert CreditAccount.objects.get(organization=org).balance == Decimal("0.00")
    assert consistent(org)


@pytest.mark.django_db
def test_a_fully_used_lot_writes_no_expiry_and_running_twice_writes_once(org):
    card = saved_card(org)
    lot1 = buy(org, card, 50)
    buy(org, card, 100)
    spend(org, "u1", "60")
    later = lot1.expires_at
    assert funds_expire(organization=org, now=later) == []
    lot3 = buy(org, card, 50)
    written = funds_expire(organization=org, now=lot3.expires_at + timedelta(days=1))
    assert [e.amount for e in written] == [Decimal("-90.00"), Decimal("-50.00")]
    assert funds_expire(organization=org, now=lot3.expires_at + timedelta(days=2)) == []
    assert consistent(org)


@pytest.mark.django_db
def test_expiry_entries_are_immutable_ledger_entries_named_after_their_lot(org):
    card = saved_card(org)
    lot = buy(org, card, 80)
    (entry,) = funds_expire(organization=org, now=lot.expires_at)
    assert entry.kind == "expiry" and entry.idempotency_key == f"expiry:{lot.pk}"
    with pytest.raises(LedgerEntryImmutable):
        entry.delete()


@pytest.mark.django_db
def test_funds_expiring_within_30_days_is_announced_once_per_lot(org):
    card = saved_card(org)
    lot = buy(org, card, 100)
    spend(org, "u1", "40")
    now = lot.expires_at - timedelta(days=20)
    assert funds_expiring_notify(organization=org, now=now) == 1
    assert funds_expiring_notify(organization=org, now=now + timedelta(days=1)) == 0
    event = DomainEvent.objects.get(name="funds_expiring")
    assert event.payload == {"amount": "60.00", "currency": "USD",
                             "expires_on": lot.expires_at.date().isoformat(),
                             "purchase_entry_id": str(lot.pk)}


@pytest.mark.django_db
def test_nothing_is_announced_more_than_30_days_ahead(org):
    card = saved_card(org)
    lot = buy(org, card, 100)
    assert funds_expiring_notify(organization=org,
                                 now=lot.expires_at - timedelta(days=31)) == 0


@pytest.mark.django_db
def test_daily_task_expires_lots_of_every_organization(org, other_org):
    card = saved_card(org)
    buy(org, card, 60)
    funded_account(other_org, "10")
    LedgerEntry.objects.filter(organization=org, kind="purchase")  # noqa: B018
    # Jump in time by writing the purchase a year ago is impossible (immutable), so the
    # task is asked about "now" through the service it calls.
    assert expire_funds() == 0
    lot = LedgerEntry.objects.get(organization=org, kind="purchase")
    assert lot.expires_at > timezone.now()
    assert funds_expire(organization=org, now=lot.expires_at)[0].amount == \
        Decimal("-60.00")
