"""The simulated gateway behaves as shared/domain/test-cards.csv says, and remembers keys."""

from decimal import Decimal

import pytest
from django.utils import timezone

from credits.models import SimulatedGatewayCard, SimulatedGatewayCharge
from credits.payments.cards import card_brand, luhn_ok
from credits.payments.simulated import SimulatedGateway

YEAR = timezone.now().year + 2


def tokenize(number, month=12, year=YEAR, cvc="123"):
    return SimulatedGateway().tokenize_card(number=number, exp_month=month, exp_year=year,
                                            cvc=cvc)


def charge(token, key, amount="50.00"):
    return SimulatedGateway().charge(token=token, amount=Decimal(amount), currency="USD",
                                     idempotency_key=key)


def test_luhn_accepts_test_cards_and_rejects_4241():
    assert luhn_ok("4242424242424242")
    assert luhn_ok("4000000000000341")
    assert not luhn_ok("4242424242424241")
    assert not luhn_ok("42424242abcd4242")
    assert card_brand("4242424242424242") == "Visa"
    assert card_brand("5555555555554444") == "Mastercard"


@pytest.mark.django_db
@pytest.mark.parametrize("number,code", [
    ("4000000000000002", "card_declined"),
    ("4000000000000069", "expired_card"),
    ("4000000000000127", "incorrect_cvc"),
    ("4242424242424241", "incorrect_number"),
])
def test_cards_that_fail_when_attached(number, code):
    result = tokenize(number)
    assert not result.is_success
    assert result.error_code == code
    assert result.message
    assert not SimulatedGatewayCard.objects.exists()


@pytest.mark.django_db
def test_a_card_past_its_expiry_is_refused():
    assert tokenize("4242424242424242", month=1, year=2020).error_code == "expired_card"


@pytest.mark.django_db
def test_4242_attaches_and_charges_and_keeps_no_number():
    card = tokenize("4242424242424242")
    assert card.is_success and card.brand == "Visa" and card.last4 == "4242"
    vault = SimulatedGatewayCard.objects.get(token=card.token)
    assert "4242424242424242" not in str(vault.__dict__)
    result = charge(card.token, "k1")
    assert result.is_success and result.reference.startswith("ch_sim_")


@pytest.mark.django_db
@pytest.mark.parametrize("number,code", [
    ("4000000000000341", "card_declined"),
    ("4000000000009995", "insufficient_funds"),
])
def test_cards_that_attach_then_decline_every_charge(number, code):
    card = tokenize(number)
    assert card.is_success
    result = charge(card.token, f"k-{number}")
    assert not result.is_success and not result.is_transient
    assert result.error_code == code


@pytest.mark.django_db
def test_same_key_returns_the_first_result_without_charging_again():
    card = tokenize("4242424242424242")
    first = charge(card.token, "same")
    second = charge(card.token, "same", amount="999.00")
    assert second.replayed and second.reference == first.reference
    assert second.amount == Decimal("50.00")
    row = SimulatedGatewayCharge.objects.get(idempotency_key="same")
    assert row.tries == 1


@pytest.mark.django_db
def test_a_declined_key_stays_declined():
    card = tokenize("4000000000000341")
    charge(card.token, "d")
    assert charge(card.token, "d").replayed
    assert SimulatedGatewayCharge.objects.get(idempotency_key="d").status == "failed"


@pytest.mark.django_db
def test_processing_error_is_transient_and_retried_under_the_same_key():
    card = tokenize("4000000000000119")
    SimulatedGatewayCard.objects.filter(token=card.token).update(transient_errors_left=2)
    assert charge(card.token, "t").is_transient
    assert charge(card.token, "t").is_transient
    third = charge(card.token, "t")
    assert third.is_success and not third.replayed
    row = SimulatedGatewayCharge.objects.get(idempotency_key="t")
    assert (row.tries, row.status) == (3, "succeeded")


@pytest.mark.django_db
def test_processing_error_card_fails_every_time_by_default():
    card = tokenize("4000000000000119")
    for _ in range(3):
        result = charge(card.token, "always")
        assert result.is_transient and result.error_code == "processing_error"


@pytest.mark.django_db
def test_a_saved_card_that_has_since_expired_is_declined_as_expired():
    card = tokenize("4242424242424242")
    SimulatedGatewayCard.objects.filter(token=card.token).update(exp_year=2020)
    assert charge(card.token, "exp").error_code == "expired_card"


# --- 4000 0000 0000 6975: no answer for the first 2 minutes ---------------------------------


def at(moment):
    """Move the clock the gateway reads (django.utils.timezone.now) to `moment`."""
    from unittest import mock

    return mock.patch("django.utils.timezone.now", return_value=moment)


def status(key):
    return SimulatedGateway().charge_status(idempotency_key=key)


@pytest.mark.django_db
def test_6975_times_out_for_2_minutes_then_the_status_says_succeeded():
    from datetime import timedelta

    from credits.payments.base import GatewayTimeout

    card = tokenize("4000000000006975")
    assert card.is_success and card.last4 == "6975"
    start = timezone.now()
    with at(start), pytest.raises(GatewayTimeout):
        charge(card.token, "late")
    row = SimulatedGatewayCharge.objects.get(idempotency_key="late")
    assert (row.status, row.tries, row.created_at) == ("pending", 1, start)  # remembered
    for moment in (start + timedelta(seconds=1), start + timedelta(seconds=119)):
        with at(moment):
            with pytest.raises(GatewayTimeout):
                status("late")
            with pytest.raises(GatewayTimeout):
                charge(card.token, "late")
    with at(start + timedelta(minutes=2)):
        known = status("late")
    assert known.is_success and known.amount == Decimal("50.00") and not known.is_transient
    assert known.reference == row.reference
    with at(start + timedelta(minutes=3)):
        again = charge(card.token, "late", amount="999.00")
    assert again.is_success and again.replayed and again.reference == row.reference
    assert again.amount == Decimal("50.00")
    row.refresh_from_db()
    assert (row.status, row.tries) == ("succeeded", 1)  # charged once, when first seen
    assert SimulatedGatewayCharge.objects.count() == 1
    assert status("never-seen") is None


@pytest.mark.django_db
def test_6975_a_charge_after_2_minutes_answers_without_a_status_call_first():
    from datetime import timedelta

    from credits.payments.base import GatewayTimeout

    card = tokenize("4000000000006975")
    start = timezone.now()
    with at(start), pytest.raises(GatewayTimeout):
        charge(card.token, "k")
    with at(start + timedelta(minutes=2, seconds=1)):
        result = charge(card.token, "k")
    assert result.is_success and result.replayed
    assert SimulatedGatewayCharge.objects.get(idempotency_key="k").tries == 1
    # Each key has its own 2 minutes.
    with at(start + timedelta(minutes=2, seconds=1)), pytest.raises(GatewayTimeout):
        charge(card.token, "k2")


def test_the_test_cards_of_the_csv_are_those_of_the_simulated_gateway():
    import csv
    from pathlib import Path

    from credits.payments.simulated import TEST_CARDS

    path = Path(__file__).resolve().parents[3] / "shared" / "domain" / "test-cards.csv"
    if not path.exists():
        pytest.skip("shared/domain is not beside the project")
    rows = {row["number"]: row["simulated result"] for row in csv.DictReader(path.open())}
    assert "time out" in rows["4000000000006975"]
    assert TEST_CARDS["4000000000006975"] == ("ok", "pending_2min")
