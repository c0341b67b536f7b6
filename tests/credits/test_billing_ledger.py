"""The ledger: immutable entries, balance == sum(entries), one charge per key."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum

from credits.models import AuditEntry, CreditAccount, DomainEvent, LedgerEntry, LedgerEntryImmutable
from credits.platform.services import Actor
from credits.services.ledger import (
    UsageCharge,
    credit_account_lock,
    credit_account_set_low_balance_threshold,
    credits_adjust,
    credits_charge_usage,
    credits_charge_usage_batch,
)
from tests.factories import funded_account

AT = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def charge(key, amount, at=AT):
    return UsageCharge(key=key, amount=Decimal(amount), description=f"call {key}",
                       occurred_at=at)


def ledger_sum(org):
    return LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]


@pytest.mark.django_db
def test_batch_charges_each_new_key_once_and_reports_duplicates(org):
    funded_account(org, "100.00")
    first = credits_charge_usage_batch(organization=org, charges=[
        charge("call:a", "1.25"), charge("call:b", "2.00"), charge("call:a", "1.25")])
    assert first.charged_keys == ["call:a", "call:b"]
    assert first.duplicate_keys == ["call:a"]
    assert first.total == Decimal("3.25")
    assert first.balance_after == Decimal("96.75")
    again = credits_charge_usage_batch(organization=org, charges=[
        charge("call:b", "2.00"), charge("call:c", "0.50")])
    assert again.charged_keys == ["call:c"]
    assert again.duplicate_keys == ["call:b"]
    assert again.balance_after == Decimal("96.25")
    assert ledger_sum(org) == Decimal("96.25")
    assert CreditAccount.objects.get(organization=org).balance == Decimal("96.25")


@pytest.mark.django_db
def test_each_usage_entry_carries_its_balance_after_and_negative_amount(org):
    funded_account(org, "10.00")
    credits_charge_usage_batch(organization=org, charges=[charge("k1", "3"), charge("k2", "4")])
    entries = list(LedgerEntry.objects.filter(kind="usage").order_by("id"))
    assert [(e.amount, e.balance_after) for e in entries] == [
        (Decimal("-3.00"), Decimal("7.00")), (Decimal("-4.00"), Decimal("3.00"))]
    assert entries[0].occurred_at == AT


@pytest.mark.django_db
def test_a_call_in_progress_settles_in_full_below_zero(org):
    funded_account(org, "1.00")
    result = credits_charge_usage_batch(organization=org, charges=[charge("long", "7.50")])
    assert result.balance_after == Decimal("-6.50")


@pytest.mark.django_db
def test_zero_amount_charges_write_nothing(org):
    funded_account(org, "5.00")
    result = credits_charge_usage_batch(organization=org, charges=[charge("free", "0")])
    assert result.charged_keys == ["free"]
    assert not LedgerEntry.objects.filter(idempotency_key="free").exists()
    assert credits_charge_usage(organization=org, charge=charge("free2", "0")) is None


@pytest.mark.django_db
def test_single_charge_returns_its_entry_then_none_for_the_same_key(org):
    funded_account(org, "5.00")
    entry = credits_charge_usage(organization=org, charge=charge("one", "1.10"))
    assert entry.amount == Decimal("-1.10")
    assert credits_charge_usage(organization=org, charge=charge("one", "1.10")) is None


@pytest.mark.django_db
def test_negative_or_naive_charges_are_refused(org):
    with pytest.raises(ValueError):
        credits_charge_usage_batch(organization=org, charges=[charge("neg", "-1")])
    with pytest.raises(ValueError):
        credits_charge_usage_batch(organization=org, charges=[
            UsageCharge(key="n", amount=Decimal(1), description="",
                        occurred_at=datetime(2026, 1, 1))])  # noqa: DTZ001


@pytest.mark.django_db
def test_entries_refuse_update_and_delete_in_the_model_layer(org):
    funded_account(org, "5.00")
    entry = LedgerEntry.objects.get(organization=org)
    entry.amount = Decimal("500.00")
    with pytest.raises(LedgerEntryImmutable):
        entry.save()
    with pytest.raises(LedgerEntryImmutable):
        entry.delete()
    with pytest.raises(LedgerEntryImmutable):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=Decimal("1.00"))
    with pytest.raises(LedgerEntryImmutable):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == Decimal("5.00")


@pytest.mark.django_db
def test_database_refuses_a_second_entry_with_the_same_key(org):
    account = funded_account(org, "5.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(organization=org, account=account, kind="usage",
                                   amount=Decimal("-1"), balance_after=Decimal("4"),
                                   idempotency_key=LedgerEntry.objects.get().idempotency_key)


@pytest.mark.django_db
@pytest.mark.parametrize("kind,amount", [("usage", "1.00"), ("purchase", "-5.00"),
                                         ("expiry", "2.00"), ("adjustment", "0")])
def test_database_refuses_the_wrong_sign_for_a_kind(org, kind, amount):
    account = funded_account(org, "0")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(organization=org, account=account, kind=kind,
                                   amount=Decimal(amount), balance_after=Decimal("0"),
                                   idempotency_key=f"sign-{kind}")


@pytest.mark.django_db
def test_account_lock_needs_a_transaction(org):
    with pytest.raises(RuntimeError):
        # pytest-django's test transaction counts as one; leave it to prove the check.
        with transaction.atomic():
            pass
        conn = transaction.get_connection()
        saved = conn.in_atomic_block
        conn.in_atomic_block = False
        try:
            credit_account_lock(organization=org)
        finally:
            conn.in_atomic_block = saved


@pytest.mark.django_db
def test_balance_zero_is_emitted_once_per_crossing(org):
    funded_account(org, "3.00")
    credits_charge_usage_batch(organization=org, charges=[charge("z1", "2"), charge("z2", "2"),
                                                          charge("z3", "2")])
    events = DomainEvent.objects.filter(name="balance_zero")
    assert events.count() == 1
    assert events.get().payload == {"balance": "-1.00", "currency": "USD"}
    credits_charge_usage_batch(organization=org, charges=[charge("z4", "1")])
    assert events.count() == 1  # still below zero: no new crossing
    credits_adjust(organization=org, amount=Decimal(10), reason="refill", actor="tests")
    credits_charge_usage_batch(organization=org, charges=[charge("z5", "9")])
    assert events.count() == 2


@pytest.mark.django_db
def test_balance_low_is_emitted_when_crossing_the_warning_level(org):
    funded_account(org, "100.00")
    credit_account_set_low_balance_threshold(organization=org, threshold=Decimal(50),
                                             actor=Actor.system("tests"))
    credits_charge_usage_batch(organization=org, charges=[charge("l1", "30")])
    assert not DomainEvent.objects.filter(name="balance_low").exists()
    credits_charge_usage_batch(organization=org, charges=[charge("l2", "30")])
    event = DomainEvent.objects.get(name="balance_low")
    assert event.payload["balance"] == "40.00"
    assert event.payload["threshold"] == "50.00"
    assert event.payload["currency"] == "USD"
    assert "days_left" in event.payload
    assert AuditEntry.objects.filter(action="credits.low_balance_threshold").exists()


@pytest.mark.django_db
def test_adjustment_writes_an_audit_row_and_keeps_the_sum(org):
    funded_account(org, "20.00")
    credits_adjust(organization=org, amount=Decimal("-5.55"), reason="goodwill reversal",
                   actor=Actor.system("support"))
    assert ledger_sum(org) == CreditAccount.objects.get(organization=org).balance
    assert AuditEntry.objects.filter(action="credits.adjust").count() == 2


@pytest.mark.django_db
def test_float_amounts_are_refused_money_is_decimal(org):
    funded_account(org, "5.00")
    with pytest.raises(TypeError):
        credits_charge_usage_batch(organization=org, charges=[
            UsageCharge(key="f", amount=0.1, description="", occurred_at=AT)])
    assert not LedgerEntry.objects.filter(idempotency_key="f").exists()
