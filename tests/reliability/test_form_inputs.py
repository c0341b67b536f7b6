"""Every money or count field of every form refuses bad numbers with a message that names
the field, and changes nothing: negative, zero, cents where whole numbers are required,
huge numbers, digits of other scripts, exponents and empty values.

The table says, per field, which of those the field takes on purpose (seats may be 0; the
low-balance level takes cents and is switched off by leaving it empty)."""

import re
from decimal import Decimal

import pytest

from credits.models import CreditAccount, Subscription
from tests.factories import SubscriptionFactory, funded_account, saved_card

pytestmark = pytest.mark.django_db

CC = "/billing/communications-credits/"

BAD = {
    "negative": "-5",
    "zero": "0",
    "cents": "75.5",
    "huge": "9" * 20,
    "over_max": "1000001",
    "full_width": "５０",
    "arabic_indic": "١٠٠",
    "superscript": "²",
    "exponent": "1e3",
    "nan": "NaN",
    "empty": "",
    "spaces": "   ",
    "nul": "50\x00",
}


def _state(org):
    account = CreditAccount.objects.filter(organization=org).first()
    seats = Subscription.objects.filter(organization=org, sku="MCOEV").values_list(
        "seats", flat=True).first()
    if account is None:
        return (None, seats)
    return (account.balance, account.auto_recharge_enabled, account.auto_recharge_amount,
            account.auto_recharge_trigger, account.low_balance_threshold, seats)


# name -> (url, data for a value, the field's name as the page shows it, values it takes,
#          the id of the input that must be marked aria-invalid or None when the page marks
#          the field in a banner)
FIELDS = {
    "add funds amount": (f"{CC}add-funds/", lambda v, card: {"amount": v, "payment_method": card},
                         "Amount", set(), "id_amount"),
    "add funds amount, confirm step": (
        f"{CC}add-funds/confirm/", lambda v, card: {"amount": v, "payment_method": card,
                                                   "request_key": f"k-{v!r}"},
        "Amount", set(), "id_amount"),
    "auto-recharge amount": (
        f"{CC}auto-recharge/", lambda v, card: {"enabled": "on", "amount": v, "trigger": "100",
                                               "payment_method": card},
        "Add this amount", set(), "id_amount"),
    "auto-recharge trigger": (
        f"{CC}auto-recharge/", lambda v, card: {"enabled": "on", "amount": "100", "trigger": v,
                                               "payment_method": card},
        "When balance is below", set(), "id_trigger"),
    "purchased seats": (
        "/billing/licenses/MCOEV/seats/", lambda v, card: {"seats": v},
        "Purchased seats", {"zero"}, "seats-MCOEV"),
    "low-balance warning level": (
        "/settings/notifications/", lambda v, card: {"section": "low_balance", "threshold": v},
        "Warning level", {"cents", "empty", "spaces"}, "id_threshold"),
}


@pytest.fixture
def setup(org, admin_client):
    funded_account(org, "10.00")
    SubscriptionFactory(organization=org, sku="MCOEV", seats=5)
    return admin_client, saved_card(org).pk


CASES = [(field, kind) for field, spec in FIELDS.items() for kind in BAD
         if kind not in spec[3]]


@pytest.mark.parametrize("field,kind", CASES)
def test_number_fields_refuse_bad_values_naming_the_field(setup, org, field, kind,
                                                          reliability):
    client, card = setup
    url, data, label, _ok, input_id = FIELDS[field]
    before = _state(org)
    response = client.post(url, data(BAD[kind], card))
    reliability.fuzz(1, server_errors=int(response.status_code >= 500))
    page = response.content.decode()
    assert response.status_code in (200, 400), (field, kind, response.status_code)
    assert "Place order" not in page  # add funds: no confirmation of a bad amount
    assert _state(org) == before, (field, kind)
    # The message names the field: the label starts the message or the error line.
    errors = re.findall(r'class="(?:field__error|banner banner--error)"[^>]*>(.*?)</(?:p|div)>',
                        page, re.S)
    assert any(label in e for e in errors), (field, kind, errors)
    assert re.search(rf'id="{re.escape(input_id)}"[^>]*aria-invalid="true"', page) or \
        re.search(rf'aria-invalid="true"[^>]*id="{re.escape(input_id)}"', page), (field, kind)


GOOD = {
    "add funds amount": "100",
    "auto-recharge amount": "100",
    "auto-recharge trigger": "60",
    "purchased seats": "12",
    "low-balance warning level": "25.50",
}


@pytest.mark.parametrize("field", sorted(GOOD))
def test_number_fields_take_a_plain_good_value(setup, org, field):
    """The refusals above are not a field that refuses everything."""
    client, card = setup
    url, data, _label, _ok, _input = FIELDS[field]
    response = client.post(url, data(GOOD[field], card))
    page = response.content.decode()
    assert response.status_code in (200, 302) and 'aria-invalid="true"' not in page
    account = CreditAccount.objects.get(organization=org)
    if field == "add funds amount":
        assert "Place order" in page
    elif field.startswith("auto-recharge"):
        # The balance (10) is below the trigger: saving charges now, once confirmed.
        assert "will be charged now" in page and not account.auto_recharge_enabled
        charge = re.search(r'name="confirm_charge" value="([0-9.]+)"', page).group(1)
        client.post(url, {**data(GOOD[field], card), "confirm": "1", "confirm_charge": charge})
        account.refresh_from_db()
        assert account.auto_recharge_enabled
        assert {account.auto_recharge_amount, account.auto_recharge_trigger} >= {
            Decimal(GOOD[field])}
    elif field == "purchased seats":
        assert Subscription.objects.get(organization=org, sku="MCOEV").seats == 12
    else:
        assert account.low_balance_threshold == Decimal("25.50")
