"""Masking of external numbers (domain/number-masking.csv)."""

import pytest
from django.db import connection

from tests.conftest import requires_postgres
from usage import masking


def test_countries_of_the_domain_table_mask_their_digit_count():
    # Written from domain/number-masking.csv.
    assert masking.digits_masked("FR") == 4
    assert masking.digits_masked("CH") == 4
    assert masking.digits_masked("DE") == 3
    assert masking.digits_masked("se") == 3
    assert masking.digits_masked("US") == 0
    assert masking.digits_masked("") == 0


def test_the_last_digits_are_replaced_by_stars():
    assert masking.mask_number("+33123456789", 4) == "+3312345****"
    assert masking.mask_number("+33123456789", 3) == "+33123456***"


def test_nothing_to_mask_is_left_alone():
    assert masking.mask_number("+33123456789", 0) == "+33123456789"
    assert masking.mask_number("", 4) == ""
    # Microsoft already masked it.
    assert masking.mask_number("+33 1234****", 4) == "+33 1234****"


def test_a_number_shorter_than_the_mask_is_hidden_whole():
    assert masking.mask_number("112", 4) == "***"


def test_outbound_masks_the_callee_and_inbound_the_caller():
    assert masking.mask_call_numbers("user_out", "+33100000001", "+33199999999", 4) == (
        "+33100000001", "+3319999****")
    assert masking.mask_call_numbers("conf_out", "+1", "+33199999999", 3) == (
        "+1", "+33199999***")
    assert masking.mask_call_numbers("user_in", "+33199999999", "+33100000001", 4) == (
        "+3319999****", "+33100000001")


def test_an_unknown_call_type_masks_both_numbers():
    assert masking.mask_call_numbers("teleport_out", "+33100000001", "+33199999999", 4) == (
        "+3310000****", "+3319999****")


def test_a_tenant_outside_the_table_sees_numbers_whole():
    assert masking.mask_call_numbers("user_out", "+1", "+33199999999", 0) == (
        "+1", "+33199999999")


@requires_postgres
@pytest.mark.django_db
@pytest.mark.parametrize("call_type", ["user_out", "user_in", "conf_out", "ucap_in", "odd"])
@pytest.mark.parametrize("number", ["+33123456789", "", "12", "+33 1234****", "+4930123"])
def test_the_sql_expression_masks_exactly_as_python(call_type, number):
    with connection.cursor() as cursor:
        for side in ("caller", "callee"):
            expr = masking.sql_masked(f"{side}_number", side, 4)
            cursor.execute(
                f"SELECT {expr} FROM (SELECT %s::text AS call_type, %s::text AS caller_number,"
                f" %s::text AS callee_number) AS t", [call_type, number, number])
            got = cursor.fetchone()[0]
            caller, callee = masking.mask_call_numbers(call_type, number, number, 4)
            assert got == (caller if side == "caller" else callee), (side, call_type, number)
