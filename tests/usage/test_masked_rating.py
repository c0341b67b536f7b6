"""Masked numbers (domain/number-masking.csv) are rated by the longest deck prefix their
visible digits determine; when a longer prefix could still match the hidden digits, the call
is left unrated (`ambiguous_masked_number`) for review. No database."""

from datetime import UTC, date, datetime
from decimal import Decimal

import phonenumbers
import pytest

from usage.masking import DIGITS_MASKED, mask_number
from usage.rating import Call, Rate, RateDeck, rate_call, visible_digits

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EFFECTIVE = date(2026, 1, 1)
PAYG = frozenset({"MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC"})


def rate(prefix, country, per_minute="0.05000", number_type="landline", effective=EFFECTIVE):
    return Rate("outbound", prefix, f"{country} {prefix}", country, number_type,
                Decimal(per_minute), Decimal("0"), 60, 60, "USD", effective)


def call(callee, country="FR", duration=60):
    return Call("user_out", "+33155550100", callee, START, duration, country, PAYG)


def masked_example(region: str) -> str:
    """phonenumbers' example fixed-line number of `region`, in E.164, masked as Microsoft
    masks it for a tenant of that country."""
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return mask_number(e164, DIGITS_MASKED[region])


@pytest.mark.parametrize("region", sorted(DIGITS_MASKED))
def test_every_masking_country_rates_by_its_visible_prefix(region):
    callee = masked_example(region)
    code = str(phonenumbers.country_code_for_region(region))
    deck = RateDeck([rate(code, region, "0.04000")], "USD")
    r = rate_call(call(callee, country=region), deck)
    assert callee.endswith("*" * DIGITS_MASKED[region])
    assert (r.status, r.rate.prefix, r.charged_to, r.charge) == (
        "rated", code, "credits", Decimal("0.04"))
    assert (r.destination_country, r.domestic) == (region, True)


@pytest.mark.parametrize("region", sorted(DIGITS_MASKED))
def test_every_masking_country_is_ambiguous_when_a_longer_prefix_hides_under_the_mask(region):
    callee = masked_example(region)
    visible = visible_digits(callee)
    # A rate for one more digit than the mask leaves: the hidden digit decides.
    code = str(phonenumbers.country_code_for_region(region))
    deck = RateDeck([rate(code, region), rate(visible + "5", region, "0.90000")], "USD")
    r = rate_call(call(callee, country=region), deck)
    assert (r.status, r.reason, r.charge) == ("unrated", "ambiguous_masked_number",
                                              Decimal("0.00"))
    assert r.destination_country == region


def test_the_longest_prefix_the_visible_digits_determine_wins():
    deck = RateDeck([rate("44", "GB", "0.02300"), rate("447", "GB", "0.09800", "mobile"),
                     rate("4420", "GB", "0.01500")], "USD")
    r = rate_call(call("+44 20 7946 0***", duration=61), deck)
    assert (r.status, r.rate.prefix, r.charge) == ("rated", "4420", Decimal("0.03"))
    assert (r.destination_country, r.domestic) == ("GB", False)


def test_a_french_tenants_mobile_is_rated_as_a_mobile():
    deck = RateDeck([rate("33", "FR", "0.02400"), rate("336", "FR", "0.11400", "mobile"),
                     rate("3395", "FR", "0.80000", "premium")], "USD")
    r = rate_call(call("+33 6 12 34 ****"), deck)
    assert (r.status, r.rate.prefix, r.charge) == ("rated", "336", Decimal("0.11"))
    ambiguous = rate_call(call("+33 9 ********"), deck)
    assert (ambiguous.status, ambiguous.reason) == ("unrated", "ambiguous_masked_number")


def test_a_longer_prefix_not_yet_in_effect_does_not_make_it_ambiguous():
    later = date(2026, 6, 1)
    deck = RateDeck([rate("33", "FR"), rate("3312", "FR", "0.5", effective=later)], "USD")
    assert rate_call(call("+33 1 ********"), deck).rate.prefix == "33"
    after = Call("user_out", "", "+33 1 ********", datetime(2026, 7, 1, tzinfo=UTC), 60, "FR",
                 PAYG)
    assert rate_call(after, deck).reason == "ambiguous_masked_number"


@pytest.mark.parametrize(("raw", "visible"), [
    ("+44 20 7946 0***", "442079460"), ("0033 6 12 34 ****", "3361234"), ("+33 1234xxxx", "331234"),
    ("+********", ""), ("06 12 34 ****", ""), ("", ""),
])
def test_visible_digits(raw, visible):
    assert visible_digits(raw) == visible


def test_a_number_without_visible_digits_stays_masked_number():
    deck = RateDeck([rate("33", "FR")], "USD")
    r = rate_call(call("+** ** ** ** **"), deck)
    assert (r.status, r.reason) == ("unrated", "masked_number")
