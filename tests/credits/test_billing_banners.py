"""Balance banners on the home page, the add-funds warning for a balance that stays blocked,
and the test-card hint of the card form."""

from decimal import Decimal

import pytest

from credits.platform.services import Actor
from credits.services.ledger import credit_account_set_low_balance_threshold
from tests.factories import funded_account, saved_card

CC = "/billing/communications-credits/"
ZERO_TEXT = "Your balance is $0.00. Toll-free numbers, international calls, dial-out"
LOW_TEXT = "Your balance is below $50.00."
STAYS_BLOCKED = ("Your balance stays at or below zero after this purchase: calls that need "
                 "credits stay blocked.")
HINT = "Test cards: 4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined;"


class OtherGateway:
    """A stand-in for a real provider: the test numbers mean nothing to it."""


def _login(client, make_person, role):
    person = make_person(role)
    client.force_login(person.user)
    return person


def _set_level(org, amount):
    credit_account_set_low_balance_threshold(organization=org, threshold=Decimal(amount),
                                             actor=Actor.system("tests"))


@pytest.mark.django_db
def test_home_shows_the_zero_balance_banner_like_the_overview(client, make_person, org):
    _login(client, make_person, "billing_administrator")
    funded_account(org, "0")
    home = client.get("/").content.decode()
    overview = client.get(CC).content.decode()
    assert ZERO_TEXT in home
    assert '<div class="banner banner--error" role="status">' in home
    assert ZERO_TEXT in overview


@pytest.mark.django_db
def test_home_shows_the_low_balance_banner_under_the_admins_level(client, make_person, org):
    _login(client, make_person, "global_reader")
    funded_account(org, "20")
    _set_level(org, "50")
    home = client.get("/").content.decode()
    assert LOW_TEXT in home
    assert ZERO_TEXT.split(".")[0] not in home
    assert LOW_TEXT in client.get(CC).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("balance", ["50", "50.01", "1000"])
def test_home_has_no_balance_banner_at_or_above_the_level(client, make_person, org, balance):
    _login(client, make_person, "billing_administrator")
    funded_account(org, balance)
    _set_level(org, "50")
    home = client.get("/").content.decode()
    assert "Your balance is" not in home


@pytest.mark.django_db
@pytest.mark.parametrize("balance", ["0", "20"])
def test_home_hides_balance_banners_without_view_billing(client, make_person, org, balance):
    _login(client, make_person, "teams_communications_support_engineer")
    funded_account(org, balance)
    _set_level(org, "50")
    response = client.get("/")
    assert response.status_code == 200
    assert "Your balance is" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("balance,amount,warned", [
    ("-500", "100", True),   # still below zero
    ("-100", "100", True),   # exactly zero: still blocked
    ("-100", "150", False),
    ("0", "100", False),
])
def test_add_funds_confirmation_warns_when_balance_stays_blocked(
        client, make_person, org, balance, amount, warned):
    _login(client, make_person, "billing_administrator")
    funded_account(org, balance)
    card = saved_card(org)
    response = client.post(f"{CC}add-funds/", {"amount": amount, "payment_method": card.pk,
                                               "request_key": "k1"})
    page = response.content.decode()
    assert response.status_code == 200 and "Place order" in page
    assert (STAYS_BLOCKED in page) is warned


@pytest.mark.django_db
def test_card_form_shows_the_test_cards_with_the_simulated_gateway(client, make_person, settings):
    settings.DEBUG = False
    settings.PAYMENT_GATEWAY = "credits.payments.simulated.SimulatedGateway"
    _login(client, make_person, "billing_administrator")
    page = client.get(f"{CC}payment-methods/").content.decode()
    assert HINT in page
    # The cards that test a pending payment and the two refund failures, too.
    assert "4000 0000 0000 6975 stays unconfirmed" in page
    assert "5126 is never refunded" in page and "7726 is refunded after one time-out" in page


@pytest.mark.django_db
def test_card_form_hides_the_test_cards_with_a_real_gateway(client, make_person, settings):
    settings.DEBUG = False
    settings.PAYMENT_GATEWAY = f"{__name__}.OtherGateway"
    _login(client, make_person, "billing_administrator")
    page = client.get(f"{CC}payment-methods/").content.decode()
    assert "Add a card" in page
    assert "Test cards:" not in page
