"""Auto-recharge and one-time purchases (Celery runs eagerly here)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from credits.models import (
    AuditEntry,
    CreditAccount,
    DomainEvent,
    Invoice,
    LedgerEntry,
    RechargeAttempt,
    SimulatedGatewayCard,
    SimulatedGatewayCharge,
)
from credits.platform.services import Actor, ServiceError
from credits.services.ledger import UsageCharge, credits_adjust, credits_charge_usage_batch
from credits.services.payment_methods import payment_method_remove
from credits.services.purchases import credits_purchase
from credits.services.recharges import (
    auto_recharge_configure,
    auto_recharge_start,
    recharge_amount_for_gap,
)
from credits.tasks import auto_recharge_sweep
from tests.factories import funded_account, saved_card

ACTOR = Actor.system("tests")


@pytest.fixture
def use(django_capture_on_commit_callbacks):
    """Charge usage and run what it enqueues after commit (eager Celery)."""

    def charge(org, key, amount):
        with django_capture_on_commit_callbacks(execute=True):
            return credits_charge_usage_batch(organization=org, charges=[UsageCharge(
                key=key, amount=Decimal(amount), description="call",
                occurred_at=datetime.now(UTC))])

    return charge


def auto_on(org, *, balance="100.00", amount=50, trigger=50, number="4242424242424242"):
    funded_account(org, balance)
    card = saved_card(org, number)
    auto_recharge_configure(organization=org, enabled=True, amount=Decimal(amount),
                            trigger=Decimal(trigger), payment_method=card, actor=ACTOR)
    return card


def balance(org):
    return CreditAccount.objects.get(organization=org).balance


def assert_consistent(org):
    total = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    assert total == balance(org)


@pytest.mark.parametrize("bal,trigger,amount,expected", [
    ("40", "50", "50", "50"),      # one amount closes the gap
    ("-260", "50", "50", "350"),    # a big call settled below zero: 7 x 50 in one charge
    ("0", "100", "50", "100"),     # exactly to the trigger
    ("49.99", "50", "100", "100"),
    ("50", "50", "100", "0"),      # not below the trigger
])
def test_one_charge_is_the_smallest_multiple_that_closes_the_gap(bal, trigger, amount, expected):
    assert recharge_amount_for_gap(
        balance=Decimal(bal), trigger=Decimal(trigger), amount=Decimal(amount)
    ) == Decimal(expected)


@pytest.mark.django_db
def test_usage_crossing_the_trigger_recharges_after_commit(org, use):
    auto_on(org, balance="60.00", amount=50, trigger=50)
    use(org, "c1", "15.00")
    attempt = RechargeAttempt.objects.get(kind="auto_recharge")
    assert attempt.status == "succeeded" and attempt.amount == Decimal("50.00")
    assert balance(org) == Decimal("95.00")
    entry = LedgerEntry.objects.get(kind="auto_recharge")
    assert entry.recharge_attempt == attempt and entry.amount == Decimal("50.00")
    assert SimulatedGatewayCharge.objects.get().idempotency_key == str(attempt.pk)
    event = DomainEvent.objects.get(name="recharge_succeeded")
    assert event.payload["kind"] == "auto_recharge"
    assert event.payload["amount"] == "50.00" and event.payload["balance"] == "95.00"
    assert event.payload["card"] == "Visa •••• 4242"
    assert event.payload["invoice_id"] == attempt.invoice.pk
    assert not any(key.endswith(("_path", "_url")) for key in event.payload)
    assert event.payload["attempt_id"] == str(attempt.pk)
    assert_consistent(org)


@pytest.mark.django_db
def test_no_recharge_while_above_the_trigger(org, use):
    auto_on(org, balance="100.00")
    use(org, "c1", "10.00")
    assert not RechargeAttempt.objects.exists()


@pytest.mark.django_db
def test_a_deep_gap_is_closed_by_one_charge(org, use):
    auto_on(org, balance="60.00", amount=50, trigger=50)
    use(org, "big", "300.00")   # -240 -> needs 300 to reach 60
    attempts = RechargeAttempt.objects.filter(kind="auto_recharge")
    assert [a.amount for a in attempts] == [Decimal("300.00")]
    assert balance(org) == Decimal("60.00")


@pytest.mark.django_db
def test_the_daily_cap_limits_automatic_recharges(org, use):
    auto_on(org, balance="60.00", amount=50, trigger=50)   # cap: max(1000, 500) = 1000
    use(org, "huge", "5000.00")
    attempt = RechargeAttempt.objects.get(kind="auto_recharge")
    assert attempt.amount == Decimal("1000.00")
    # Still below the trigger, but today's cap is used up: the sweep does nothing more.
    auto_recharge_sweep()
    assert RechargeAttempt.objects.filter(kind="auto_recharge").count() == 1


@pytest.mark.django_db
def test_the_database_allows_one_pending_automatic_attempt_per_account(org):
    from django.db import IntegrityError, transaction

    card = auto_on(org)
    account = CreditAccount.objects.get(organization=org)
    RechargeAttempt.objects.create(organization=org, account=account, kind="auto_recharge",
                                   amount=Decimal(50), currency="USD", payment_method=card)
    with pytest.raises(IntegrityError), transaction.atomic():
        RechargeAttempt.objects.create(organization=org, account=account, kind="auto_recharge",
                                       amount=Decimal(50), currency="USD", payment_method=card)


@pytest.mark.django_db
def test_a_pending_attempt_is_resumed_not_duplicated(org, use):
    auto_on(org, balance="100.00")
    use(org, "x", "60.00")  # eager: recharged already
    assert RechargeAttempt.objects.count() == 1
    use(org, "y", "60.00")  # 30 -> recharged again by a new attempt
    assert RechargeAttempt.objects.filter(status="succeeded").count() == 2
    assert auto_recharge_start(organization_id=org.pk) is None  # above the trigger


@pytest.mark.django_db
def test_a_decline_records_the_attempt_backs_off_and_changes_no_balance(org, use):
    auto_on(org, balance="60.00", number="4000000000000341")
    use(org, "d1", "20.00")
    attempt = RechargeAttempt.objects.get()
    assert attempt.status == "failed" and attempt.reason_code == "card_declined"
    assert balance(org) == Decimal("40.00")
    assert not LedgerEntry.objects.filter(kind="auto_recharge").exists()
    account = CreditAccount.objects.get(organization=org)
    assert account.declines_in_a_row == 1
    assert account.next_attempt_at > timezone.now() + timedelta(minutes=59)
    event = DomainEvent.objects.get(name="recharge_failed")
    assert event.payload["reason_code"] == "card_declined"
    assert event.payload["reason"] == "The bank declined the card."
    assert event.payload["declines_in_a_row"] == 1
    assert event.payload["auto_recharge_disabled"] is False
    assert event.payload["next_attempt_at"] == account.next_attempt_at.isoformat()
    assert not any(key.endswith(("_path", "_url")) for key in event.payload)
    # Within the back-off, more usage starts no attempt.
    use(org, "d2", "1.00")
    auto_recharge_sweep()
    assert RechargeAttempt.objects.count() == 1
    assert AuditEntry.objects.filter(action="credits.auto_recharge_failed").count() == 1


@pytest.mark.django_db
def test_three_declines_in_a_row_turn_auto_recharge_off(org, use):
    auto_on(org, balance="60.00", number="4000000000009995")
    use(org, "d1", "20.00")
    for _ in range(2):
        CreditAccount.objects.filter(organization=org).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1))
        auto_recharge_sweep()
    account = CreditAccount.objects.get(organization=org)
    assert account.declines_in_a_row == 3
    assert account.auto_recharge_enabled is False
    assert RechargeAttempt.objects.filter(status="failed").count() == 3
    assert DomainEvent.objects.filter(name="recharge_failed").count() == 3
    last = DomainEvent.objects.filter(name="recharge_failed").order_by("-id").first()
    assert last.payload["auto_recharge_disabled"] is True
    assert last.payload["reason_code"] == "insufficient_funds"
    disabled = DomainEvent.objects.get(name="auto_recharge_disabled")
    assert disabled.payload["declines_in_a_row"] == 3
    assert not any(key.endswith(("_path", "_url")) for key in disabled.payload)
    assert balance(org) == Decimal("40.00")


@pytest.mark.django_db
def test_a_success_resets_the_decline_count(org, use):
    card = auto_on(org, balance="60.00", number="4000000000000341")
    use(org, "d1", "20.00")
    SimulatedGatewayCard.objects.filter(token=card.gateway_token).update(behaviour="succeeds")
    CreditAccount.objects.filter(organization=org).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))
    auto_recharge_sweep()
    account = CreditAccount.objects.get(organization=org)
    assert (account.declines_in_a_row, account.next_attempt_at) == (0, None)
    assert account.balance == Decimal("90.00")


@pytest.mark.django_db
def test_an_expired_saved_card_fails_the_recharge_as_expired(org, use):
    card = auto_on(org, balance="60.00")
    SimulatedGatewayCard.objects.filter(token=card.gateway_token).update(exp_year=2020)
    use(org, "e1", "20.00")
    assert RechargeAttempt.objects.get().reason_code == "expired_card"
    assert DomainEvent.objects.get(name="recharge_failed").payload["reason"] == \
        "The card has expired."


@pytest.mark.django_db
def test_transient_errors_are_retried_under_the_same_key_then_credit_once(org, use):
    card = auto_on(org, balance="60.00", number="4000000000000119")
    SimulatedGatewayCard.objects.filter(token=card.gateway_token).update(transient_errors_left=2)
    use(org, "t1", "20.00")
    attempt = RechargeAttempt.objects.get()
    assert attempt.status == "succeeded"
    row = SimulatedGatewayCharge.objects.get()
    assert row.idempotency_key == str(attempt.pk) and row.tries == 3
    assert LedgerEntry.objects.filter(kind="auto_recharge").count() == 1
    assert balance(org) == Decimal("90.00")


@pytest.mark.django_db
def test_transient_errors_that_never_clear_fail_the_attempt_without_counting_a_decline(org, use):
    auto_on(org, balance="60.00", number="4000000000000119")
    use(org, "t1", "20.00")
    attempt = RechargeAttempt.objects.get()
    assert attempt.status == "failed" and attempt.reason_code == "processing_error"
    assert SimulatedGatewayCharge.objects.get().tries == 6  # first try + 5 retries
    account = CreditAccount.objects.get(organization=org)
    assert account.declines_in_a_row == 0 and account.next_attempt_at is not None
    assert balance(org) == Decimal("40.00")


@pytest.mark.django_db
def test_sweep_catches_a_recharge_the_event_path_missed(org):
    auto_on(org, balance="100.00")
    # The balance moves below the trigger but the after-commit hook never runs (here: no
    # commit callbacks are executed, as when the broker was down).
    credits_adjust(organization=org, amount=Decimal("-70"), reason="test", actor=ACTOR)
    assert not RechargeAttempt.objects.exists()
    assert balance(org) == Decimal("30.00")
    assert auto_recharge_sweep() == 1
    assert balance(org) == Decimal("80.00")


@pytest.mark.django_db
def test_the_sweep_finishes_an_attempt_left_pending(org):
    card = auto_on(org, balance="100.00")
    account = CreditAccount.objects.get(organization=org)
    stale = RechargeAttempt.objects.create(
        organization=org, account=account, kind="auto_recharge", amount=Decimal(50),
        currency="USD", payment_method=card, created_at=timezone.now() - timedelta(minutes=10))
    auto_recharge_sweep()
    stale.refresh_from_db()
    assert stale.status == "succeeded"
    assert balance(org) == Decimal("150.00")


@pytest.mark.django_db
def test_settings_refuse_nonsense(org):
    funded_account(org, "0")
    card = saved_card(org)
    for amount, trigger, field in [("49", "50", "amount"), ("50", "10", "trigger"),
                                   ("50.5", "50", "amount"), ("100001", "50", "amount")]:
        with pytest.raises(ServiceError) as error:
            auto_recharge_configure(organization=org, enabled=True, amount=amount,
                                    trigger=trigger, payment_method=card, actor=ACTOR)
        assert error.value.field == field
    auto_recharge_configure(organization=org, enabled=True, amount="100",
                            trigger="50", payment_method=card, actor=ACTOR)
    audit = AuditEntry.objects.filter(action="credits.auto_recharge").get()
    assert audit.changes["enabled"] == {"from": False, "to": True}


@pytest.mark.django_db
def test_purchase_adds_the_amount_with_an_invoice_and_the_credits_license(
        org, django_capture_on_commit_callbacks):
    from credits.models import Subscription

    card = saved_card(org)
    # The license comes from the success event's subscriber, dispatched after commit.
    with django_capture_on_commit_callbacks(execute=True):
        attempt = credits_purchase(organization=org, amount=Decimal(50),
                                   payment_method=card, actor=ACTOR)
    assert attempt.status == "succeeded"
    assert balance(org) == Decimal("50.00")
    entry = LedgerEntry.objects.get(kind="purchase")
    assert entry.expires_at.date() == (entry.created_at + timedelta(days=365)).date()
    assert Invoice.objects.get().ledger_entry == entry
    sub = Subscription.objects.get(organization=org, sku="MCOPSTNC")
    assert sub.seats is None  # unlimited
    assert AuditEntry.objects.filter(action="credits.purchase").exists()
    event = DomainEvent.objects.get(name="recharge_succeeded")
    assert event.payload["kind"] == "purchase"
    with django_capture_on_commit_callbacks(execute=True):
        credits_purchase(organization=org, amount=Decimal(60), payment_method=card,
                         actor=ACTOR)
    assert Subscription.objects.filter(organization=org, sku="MCOPSTNC").count() == 1


@pytest.mark.django_db
def test_a_declined_purchase_changes_nothing_and_says_why(org):
    card = saved_card(org, "4000000000000341")
    attempt = credits_purchase(organization=org, amount=Decimal(100), payment_method=card,
                               actor=ACTOR)
    assert attempt.status == "failed"
    assert attempt.reason == "The bank declined the card."
    assert balance(org) == Decimal("0.00")
    assert not LedgerEntry.objects.exists()
    assert DomainEvent.objects.get(name="recharge_failed").payload["reason_code"] == \
        "card_declined"


@pytest.mark.django_db
def test_the_same_purchase_request_buys_once(org):
    card = saved_card(org)
    a = credits_purchase(organization=org, amount=50, payment_method=card, actor=ACTOR,
                         request_key="r1")
    b = credits_purchase(organization=org, amount=50, payment_method=card, actor=ACTOR,
                         request_key="r1")
    assert a.pk == b.pk
    assert balance(org) == Decimal("50.00")
    assert SimulatedGatewayCharge.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("changes,code", [
    ({"billing_region": "FR"}, "region"),
    ({"billing_account_type": "partner"}, "partner"),
    ({"billing_account_type": "mca"}, "mca"),
])
def test_organizations_that_may_not_buy_are_refused(org, changes, code):
    card = saved_card(org)
    for k, v in changes.items():
        setattr(org, k, v)
    org.save()
    with pytest.raises(ServiceError) as error:
        credits_purchase(organization=org, amount=50, payment_method=card, actor=ACTOR)
    assert error.value.code == code
    assert not RechargeAttempt.objects.exists()


@pytest.mark.django_db
def test_another_organizations_card_cannot_be_charged(org, other_org):
    card = saved_card(other_org)
    with pytest.raises(ServiceError) as error:
        credits_purchase(organization=org, amount=50, payment_method=card, actor=ACTOR)
    assert error.value.field == "payment_method"


@pytest.mark.django_db
def test_removing_the_auto_recharge_card_is_refused(org):
    card = auto_on(org)
    with pytest.raises(ServiceError):
        payment_method_remove(organization=org, payment_method=card, actor=ACTOR)
    other = saved_card(org, "5555555555554444")
    payment_method_remove(organization=org, payment_method=other, actor=ACTOR)
    other.refresh_from_db()
    assert other.removed_at is not None
