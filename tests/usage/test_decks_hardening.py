"""Rate deck hardening: a field over the CSV reader's limit, NUL bytes, lone
surrogates and absurd prices are refused with the line and the field, on the Settings >
Rates upload and in `load_rates`, and nothing of such a file is half-loaded."""

import io
import os
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from credits.platform.services import Actor, ServiceError
from tests.factories import TEST_DECK_CSV, load_test_deck
from usage import decks, rating
from usage.models import Rate, RateDeck
from usage.services import rate_deck_load

pytestmark = pytest.mark.django_db

# Line 5 of TEST_DECK_CSV (the header is line 1).
UK = "outbound,44,United Kingdom,GB,landline,0.02300,0.00,60,60,USD,2026-01-01"


def deck_with_line_5(line: str) -> str:
    assert UK in TEST_DECK_CSV
    return TEST_DECK_CSV.replace(UK, line)


HUGE = deck_with_line_5(f"outbound,44,{'U' * 131_073},GB,landline,0.02300,0.00,60,60,USD,"
                        "2026-01-01")
NUL = deck_with_line_5(UK.replace("United Kingdom", "United\x00Kingdom"))


@pytest.fixture
def loaded(org):
    """The organization with the usual deck loaded: what a refused file must leave as is."""
    load_test_deck(org)
    return sorted(Rate.objects.filter(organization=org).values_list("prefix", "destination"))


def rates_of(org):
    return sorted(Rate.objects.filter(organization=org).values_list("prefix", "destination"))


def upload(client, content: bytes, **data):
    return client.post(reverse("settings_rates_upload"),
                       {"file": SimpleUploadedFile("deck.csv", content), **data})


@pytest.fixture
def rates_admin(client_for, make_person):
    return client_for(make_person("teams_communications_administrator"))


# --- parsing --------------------------------------------------------------------------


def test_a_field_over_the_csv_limit_refuses_the_file_naming_the_line():
    with pytest.raises(decks.DeckError, match=r"^Line 5: a value is longer than 131072 "):
        decks.parse_deck(HUGE.encode(), "USD")


def test_a_header_over_the_csv_limit_refuses_the_file_on_line_1():
    with pytest.raises(decks.DeckError, match=r"^Line 1: "):
        decks.parse_deck(("x" * 131_073 + "\n" + TEST_DECK_CSV).encode(), "USD")


@pytest.mark.parametrize("column", decks.COLUMNS)
@pytest.mark.parametrize("bad", ["\x00", "\udfff"], ids=["NUL", "surrogate"])
def test_nul_or_a_surrogate_in_any_column_is_an_error_of_that_line(column, bad):
    values = dict(zip(decks.COLUMNS, UK.split(","), strict=True))
    values[column] = values[column][:1] + bad + values[column][1:]
    rates, errors = decks.parse_deck(deck_with_line_5(",".join(values.values())), "USD")
    assert len(rates) == 8
    [(line, reason)] = errors
    assert line == 5 and reason.startswith(f"{column}: contains ")


def test_a_surrogate_as_a_broken_exporter_writes_it_is_an_error_of_its_line():
    """ED B3 BF: what UTF-8 would make of the lone surrogate U+DCFF."""
    data = TEST_DECK_CSV.encode().replace(b"United Kingdom,", b"United K\xed\xb3\xbf,")
    rates, errors = decks.parse_deck(data, "USD")
    assert errors == [(5, "destination: contains a lone UTF-16 surrogate (not valid "
                          "Unicode text)")]
    assert len(rates) == 8


def test_bytes_that_are_not_utf8_refuse_the_file_naming_the_line():
    data = TEST_DECK_CSV.encode().replace(b"United Kingdom,", b"United K\xff,")
    with pytest.raises(decks.DeckError, match=r"^Line 5: the file is not UTF-8 text\.$"):
        decks.parse_deck(data, "USD")


@pytest.mark.parametrize("line, field", [
    (UK.replace("0.02300,0.00", "100.00001,0.00"), "rate_per_minute"),
    (UK.replace("0.02300,0.00", "1000,0.00"), "rate_per_minute"),
    (UK.replace("0.02300,0.00", "0.02300,100.01"), "connection_fee"),
])
def test_a_price_above_the_sane_maximum_is_an_error_of_that_line(line, field):
    rates, errors = decks.parse_deck(deck_with_line_5(line), "USD")
    assert errors == [(5, f"{field}: must be at most 100.00")]


def test_the_sane_maximum_itself_loads(org):
    line = UK.replace("0.02300,0.00", f"{rating.MAX_RATE_PER_MINUTE},"
                                      f"{rating.MAX_CONNECTION_FEE}")
    load_test_deck(org, deck_with_line_5(line))
    uk = Rate.objects.get(organization=org, prefix="44")
    assert (uk.rate_per_minute, uk.connection_fee) == (Decimal("100"), Decimal("100"))


def test_rate_deck_load_holds_rates_made_elsewhere_to_the_same_bounds(org, loaded):
    rates, _errors = decks.parse_deck(TEST_DECK_CSV, "USD")
    absurd = rates[0]._replace(rate_per_minute=Decimal("100.00001"))
    with pytest.raises(ServiceError, match="outbound 1: rate_per_minute must be from 0 to 100"):
        rate_deck_load(organization=org, rates=[absurd, *rates[1:]],
                       actor=Actor.system("test"))
    fee = rates[0]._replace(connection_fee=Decimal("-0.01"))
    with pytest.raises(ServiceError, match="connection_fee"):
        rate_deck_load(organization=org, rates=[fee], actor=Actor.system("test"))
    assert rates_of(org) == loaded


# --- Settings > Rates ------------------------------------------------------------------


def test_the_upload_page_refuses_a_huge_field_naming_the_line(rates_admin, org, loaded):
    page = upload(rates_admin, HUGE.encode())
    assert page.status_code == 400
    assert page.context["form"].errors["file"] == [
        "Line 5: a value is longer than 131072 characters."]
    assert rates_of(org) == loaded


BAD_TEXT_UPLOADS = {
    "NUL": (NUL.encode(), "destination: contains a NUL character"),
    "surrogate": (TEST_DECK_CSV.encode().replace(b"United Kingdom,", b"United K\xed\xb3\xbf,"),
                  "destination: contains a lone UTF-16 surrogate (not valid Unicode text)"),
}


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("kind", sorted(BAD_TEXT_UPLOADS))
def test_the_upload_page_names_a_bad_text_line_and_loads_nothing_unless_asked(
        rates_admin, org, loaded, kind, skip):
    content, reason = BAD_TEXT_UPLOADS[kind]
    page = upload(rates_admin, content, **({"skip_bad_rows": "on"} if skip else {}))
    if not skip:
        assert page.status_code == 400
        assert page.context["line_errors"] == [(5, reason)]
        assert reason.encode() in page.content
        assert rates_of(org) == loaded
    else:
        assert page.status_code == 302
        assert [p for p, _d in rates_of(org)] == sorted(
            p for p, _d in loaded if p != "44")


def test_the_upload_page_refuses_an_absurd_rate_naming_the_line(rates_admin, org, loaded):
    page = upload(rates_admin, deck_with_line_5(UK.replace("0.02300", "1000")).encode())
    assert page.status_code == 400
    assert page.context["line_errors"] == [(5, "rate_per_minute: must be at most 100.00")]
    assert rates_of(org) == loaded


# --- load_rates ------------------------------------------------------------------------


def test_load_rates_refuses_a_huge_field_without_a_traceback(tmp_path, org, loaded):
    path = tmp_path / "huge.csv"
    path.write_text(HUGE)
    for extra in ([], ["--skip-bad-rows"]):
        with pytest.raises(CommandError, match="^Line 5: a value is longer than 131072"):
            call_command("load_rates", str(path), "--org", org.slug, *extra,
                         stdout=io.StringIO(), stderr=io.StringIO())
    assert rates_of(org) == loaded


def test_load_rates_names_a_nul_line_and_loads_nothing(tmp_path, org, loaded):
    path = tmp_path / "nul.csv"
    path.write_text(NUL)
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 bad line"):
        call_command("load_rates", str(path), "--org", org.slug, stdout=io.StringIO(),
                     stderr=err)
    assert "line 5: destination: contains a NUL character" in err.getvalue()
    assert rates_of(org) == loaded


def test_load_rates_takes_a_file_whose_name_is_not_utf8(tmp_path, org):
    """Linux gives such a name to Python with lone surrogates; the deck records it as text."""
    path = tmp_path / os.fsdecode(b"d\xe9ck.csv")
    path.write_text(TEST_DECK_CSV)
    out = io.StringIO()
    call_command("load_rates", str(path), "--org", org.slug, stdout=out, stderr=io.StringIO())
    assert "loaded 9 rates" in out.getvalue()
    name = RateDeck.objects.get(organization=org).source_name
    assert name.startswith("d") and name.endswith("ck.csv")
    name.encode("utf-8")
