"""The rating engine against every worked example of domain/charging-rules.md, plus
properties that must hold for any call (no database)."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usage.rating import (
    CALL_TYPES,
    Call,
    Rate,
    RateDeck,
    billable_seconds,
    charge_cents,
    max_billable_seconds,
    normalize_number,
    rate_call,
    region_of,
)

DECK_CSV = """\
outbound,1,United States and Canada,US,landline,0.01900,0.00,60,60,USD,2026-01-01
outbound,33,France,FR,landline,0.02400,0.00,60,60,USD,2026-01-01
outbound,336,France - Mobile,FR,mobile,0.11400,0.00,60,60,USD,2026-01-01
outbound,44,United Kingdom,GB,landline,0.02300,0.00,60,60,USD,2026-01-01
outbound,447,United Kingdom - Mobile,GB,mobile,0.09800,0.00,60,60,USD,2026-01-01
outbound,3395,France - Premium,FR,premium,0.80000,0.15,60,60,USD,2026-01-01
inbound_toll_free,1800,United States toll-free,US,toll_free,0.03000,0.00,60,60,USD,2026-01-01
inbound_toll_free,33800,France toll-free,FR,toll_free,0.05300,0.00,60,60,USD,2026-01-01
outbound,81,Japan,JP,landline,0.05000,0.00,60,60,USD,2026-01-01
outbound,971,United Arab Emirates,AE,landline,0.15000,0.00,60,60,USD,2026-01-01
"""


def make_rate(line: str) -> Rate:
    d, p, dest, c, t, r, f, fi, ni, cur, eff = line.split(",")
    return Rate(d, p, dest, c, t, Decimal(r), Decimal(f), int(fi), int(ni), cur,
                date.fromisoformat(eff))


DECK = RateDeck([make_rate(line) for line in DECK_CSV.splitlines()], "USD")
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
FRESH = {("domestic", "US"): 3000, ("international", "US"): 600, ("domestic", "FR"): 1200,
         ("conference", ""): 600}
DOMESTIC = frozenset({"MCOEV", "MCOPSTN1", "MCOPSTNC"})
DI = frozenset({"MCOEV", "MCOPSTN2", "MCOPSTNC"})
PAYG = frozenset({"MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC"})


def call(call_type="user_out", callee="+12125550100", duration=60, country="US", skus=DOMESTIC,
         caller="+14255550100", **kw):
    return Call(call_type, caller, callee, START, duration, country, skus, **kw)


def test_example_1_domestic_plan_takes_three_pool_minutes_for_125_seconds():
    r = rate_call(call(duration=125), DECK, FRESH)
    assert (r.charged_to, r.pool_kind, r.pool_minutes, r.charge) == (
        "plan_pool", "domestic", 3, Decimal("0.00"))
    assert r.capability == "MCOPSTN1"
    assert r.billable_seconds == 180


def test_example_2_used_up_domestic_pool_bills_180_seconds_to_credits():
    r = rate_call(call(duration=125), DECK, {("domestic", "US"): 0})
    assert (r.charged_to, r.billable_seconds, r.rate_per_minute, r.charge) == (
        "credits", 180, Decimal("0.01900"), Decimal("0.06"))
    assert r.capability == "MCOPSTNPP"


def test_example_3_international_on_domestic_plan_bills_credits():
    r = rate_call(call(callee="+33123456789", duration=61), DECK, FRESH)
    assert (r.charged_to, r.billable_seconds, r.charge) == ("credits", 120, Decimal("0.05"))
    assert r.pool_minutes == 0


def test_example_4_international_on_di_plan_uses_international_pool():
    r = rate_call(call(callee="+33612345678", duration=10, skus=DI), DECK, FRESH)
    assert (r.charged_to, r.pool_kind, r.pool_minutes, r.charge) == (
        "plan_pool", "international", 1, Decimal("0.00"))
    assert r.capability == "MCOPSTN2"


def test_example_5_pay_as_you_go_pays_every_minute_with_credits():
    r = rate_call(call(callee="+33123456789", duration=30, country="FR", skus=PAYG), DECK, FRESH)
    assert (r.charged_to, r.billable_seconds, r.charge) == ("credits", 60, Decimal("0.02"))


def test_example_6_inbound_toll_free_is_charged_to_credits():
    r = rate_call(call("ucap_in", callee="+18005550100", caller="+12125550100", duration=600,
                       skus=frozenset()), DECK, FRESH)
    assert (r.charged_to, r.billable_seconds, r.charge) == ("credits", 600, Decimal("0.30"))
    assert r.capability == "MCOPSTNPP"


@pytest.mark.parametrize("duration", [1, 60, 3600, 86400])
def test_example_7_inbound_to_a_user_number_is_free(duration):
    r = rate_call(call("user_in", callee="+14255550100", caller="+33123456789",
                       duration=duration), DECK, FRESH)
    assert (r.charged_to, r.charge, r.pool_minutes) == ("free", Decimal("0.00"), 0)


def test_example_8_meeting_dial_out_to_zone_a_uses_conference_pool():
    r = rate_call(call("conf_out", callee="+442071234567", duration=300), DECK, FRESH)
    assert (r.charged_to, r.pool_kind, r.pool_minutes, r.charge) == (
        "conference_pool", "conference", 5, Decimal("0.00"))
    assert r.capability == "MCOMEETADD"


def test_example_9_meeting_dial_out_outside_zone_a_bills_credits_per_rate():
    r = rate_call(call("conf_out", callee="+97142345678", duration=90), DECK, FRESH)
    assert (r.charged_to, r.billable_seconds, r.charge) == ("credits", 120, Decimal("0.30"))


def test_example_10_premium_destination_always_bills_credits_with_fee():
    for skus in (DOMESTIC, DI, PAYG):
        r = rate_call(call(callee="+33951234567", duration=60, country="FR", skus=skus),
                      DECK, FRESH)
        assert (r.charged_to, r.connection_fee, r.charge) == (
            "credits", Decimal("0.15"), Decimal("0.95"))


def test_examples_11_and_12_the_first_block_sets_what_a_balance_buys():
    # Authorization (tested through the API in test_api.py) refuses on these numbers:
    # a zero balance buys nothing, a balance below the first block buys nothing.
    assert max_billable_seconds(0, 1900, 0, 60, 60) == 0
    assert max_billable_seconds(1, 80000, 15000, 60, 60) == 0  # 0.01 vs 0.95


def test_example_13_unconnected_call_costs_nothing_and_takes_no_pool():
    for skus, callee in ((DOMESTIC, "+12125550100"), (PAYG, "+33951234567")):
        r = rate_call(call(callee=callee, duration=0, skus=skus), DECK, FRESH)
        assert (r.charged_to, r.charge, r.pool_minutes, r.billable_seconds) == (
            "free", Decimal("0.00"), 0, 0)


def test_example_14_us_to_canada_is_domestic():
    r = rate_call(call(callee="+14165550100", duration=100), DECK, FRESH)
    assert (r.charged_to, r.pool_kind, r.destination_country, r.charge) == (
        "plan_pool", "domestic", "CA", Decimal("0.00"))


def test_partly_covered_call_bills_the_rest_with_increments():
    r = rate_call(call(duration=200), DECK, {("domestic", "US"): 2})
    # 120 s from the pool, 80 s left -> 120 billable seconds at 0.019 = 0.038 -> 0.04
    assert (r.charged_to, r.pool_minutes, r.credit_seconds, r.charge) == (
        "credits", 2, 120, Decimal("0.04"))
    assert r.billable_seconds == 240


@pytest.mark.parametrize(
    ("callee", "reason"),
    [("+** ********", "masked_number"), ("anonymous", "not_a_number"), ("", "missing_number"),
     (None, "missing_number"), ("+0123456789", "not_a_number")],
)
def test_unusable_numbers_are_unrated_with_a_reason(callee, reason):
    r = rate_call(call(callee=callee), DECK, FRESH)
    assert (r.status, r.reason, r.charge) == ("unrated", reason, Decimal("0.00"))


def test_unknown_call_type_is_unrated_not_an_error():
    r = rate_call(call("user_out_teleport"), DECK, FRESH)
    assert (r.status, r.reason) == ("unrated", "unknown_call_type")


def test_destination_without_rate_is_unrated():
    r = rate_call(call(callee="+4930123456"), DECK, FRESH)
    assert (r.status, r.reason, r.destination_country) == ("unrated", "no_rate", "DE")


def test_toll_free_inventory_without_deck_row_is_unrated():
    r = rate_call(call("user_in", callee="+611800123456", inventory_type="TollFree"), DECK)
    assert (r.status, r.reason) == ("unrated", "no_toll_free_rate")


def test_longest_prefix_and_effective_dates():
    rows = [make_rate("outbound,33,France,FR,landline,0.02400,0.00,60,60,USD,2026-01-01"),
            make_rate("outbound,33,France,FR,landline,0.03000,0.00,60,60,USD,2026-03-01"),
            make_rate("outbound,331,Paris,FR,landline,0.01000,0.00,60,60,USD,2026-06-01")]
    deck = RateDeck(rows)
    assert deck.lookup("outbound", "33123", date(2026, 2, 28)).rate_per_minute == Decimal(
        "0.02400")
    assert deck.lookup("outbound", "33123", date(2026, 3, 1)).rate_per_minute == Decimal(
        "0.03000")
    # The longer prefix applies only once in effect.
    assert deck.lookup("outbound", "33123", date(2026, 6, 1)).prefix == "331"
    assert deck.lookup("outbound", "33123", date(2025, 12, 31)) is None
    assert deck.lookup("inbound_toll_free", "33123", date(2026, 6, 1)) is None


def test_billable_seconds_follow_increments():
    assert billable_seconds(0, 60, 60) == 0
    assert billable_seconds(1, 30, 6) == 30
    assert billable_seconds(31, 30, 6) == 36
    assert billable_seconds(36, 30, 6) == 36
    assert billable_seconds(37, 30, 6) == 42


def test_charge_rounds_half_up_once():
    # 30 s at 0.01000 = 0.005 -> 0.01 (half-up), not banker's 0.00
    assert charge_cents(30, 1000, 0) == 1
    assert charge_cents(29, 1000, 0) == 0


def test_normalize_and_region():
    assert normalize_number("+1 (212) 555-0100") == ("12125550100", None)
    assert normalize_number("0033123456789") == ("33123456789", None)
    assert region_of("14165550100") == "CA"
    assert region_of("12125550100") == "US"
    assert region_of("442071234567") == "GB"
    assert region_of("33123456789") == "FR"


# --- properties -----------------------------------------------------------------------------

numbers = st.one_of(
    st.sampled_from(["+12125550100", "+14165550100", "+33123456789", "+33612345678",
                     "+33951234567", "+442071234567", "+447700900123", "+18005550100",
                     "+33800123456", "+97142345678", "+81312345678", "+4930123456",
                     "+33 1234****", "anonymous", ""]),
    st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True),
)
sku_sets = st.frozensets(st.sampled_from(
    ["MCOEV", "MCOPSTN1", "MCOPSTN2", "MCOPSTN_PAYG_1", "MCOPSTNC", "MCOMEETADD"]))
call_strategy = st.builds(
    Call,
    call_type=st.sampled_from(sorted(CALL_TYPES) + ["made_up"]),
    caller=numbers,
    callee=numbers,
    start=st.just(START),
    duration=st.integers(min_value=0, max_value=200_000),
    usage_country=st.sampled_from(["US", "CA", "FR", "GB", "DE", ""]),
    skus=sku_sets,
    inventory_type=st.sampled_from(["", "Subscriber", "Service", "TollFree"]),
)
pools = st.dictionaries(
    st.sampled_from([("domestic", "US"), ("domestic", "CA"), ("domestic", "FR"),
                     ("international", "US"), ("international", "FR"), ("conference", "")]),
    st.integers(min_value=0, max_value=5000),
)


@settings(max_examples=400, deadline=None)
@given(c=call_strategy, pool=pools)
def test_property_charge_never_negative_and_billing_covers_the_call(c, pool):
    r = rate_call(c, DECK, pool)
    assert r.charge >= 0
    assert r.charge == r.charge.quantize(Decimal("0.01"))
    if r.status == "rated" and r.charged_to != "free":
        assert r.billable_seconds >= c.duration
        assert r.pool_minutes * 60 + r.credit_seconds >= c.duration
        assert r.billable_seconds == r.pool_minutes * 60 + r.credit_seconds
    if r.charged_to == "credits":
        assert r.capability == "MCOPSTNPP"
    else:
        assert r.charge == 0
    if r.pool_kind is not None:
        assert r.pool_minutes <= pool.get((r.pool_kind, r.pool_country), 0)


@settings(max_examples=300, deadline=None)
@given(balance=st.integers(min_value=0, max_value=10_000_00),
       rate=st.integers(min_value=1, max_value=500_000),
       fee=st.integers(min_value=0, max_value=100_000),
       first=st.integers(min_value=1, max_value=120), nxt=st.integers(min_value=1, max_value=120))
def test_property_max_duration_is_affordable_and_one_more_block_is_not(balance, rate, fee,
                                                                       first, nxt):
    seconds = max_billable_seconds(balance, rate, fee, first, nxt)
    if seconds == 0:
        assert charge_cents(first, rate, fee) > balance
    else:
        assert charge_cents(seconds, rate, fee) <= balance
        assert charge_cents(seconds + nxt, rate, fee) > balance


def test_rating_and_the_product_catalog_import_without_django_settings_or_database():
    """The engine reads SKUs and Zone A from credits.products: importing both must not need
    Django's settings, and must load no database module."""
    code = ("import sys, usage.rating, credits.products; "
            "loaded = [m for m in sys.modules if m.startswith(('django.db', 'usage.models', "
            "'credits.models', 'credits.platform.models'))]; assert not loaded, loaded; "
            "assert usage.rating.ZONE_A is credits.products.ZONE_A")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
