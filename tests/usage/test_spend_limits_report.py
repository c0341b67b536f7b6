"""The PSTN usage report shows month-to-date spend against the limits and filters to the
people near (>= 80 %) or over their monthly credits limit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from credits.services.spend_limits import person_spend_limit_set, spend_limit_set
from tests.factories import TEST_DECK_CSV, PersonFactory, graph_row, load_test_deck
from usage.services import calls_ingest

from .conftest import fund, licensed

pytestmark = pytest.mark.django_db
DECK = TEST_DECK_CSV + "outbound,34,Spain,ES,landline,0.05000,0.00,60,60,USD,2026-01-01\n"


def call(org, graph_id, person, minutes, start):
    calls_ingest(organization=org, source="api", rows=[graph_row(
        graph_id, userPrincipalName=person.upn, calleeNumber="+34912345678",
        duration=minutes * 60, startDateTime=start.strftime("%Y-%m-%dT%H:%M:%SZ"))])


def test_report_shows_limits_and_filters_people_near_or_over(org, client_for, make_person):
    load_test_deck(org, DECK)
    fund(org, 500)
    people = {}
    for name in ("Over Olga", "Near Nina", "Fine Fred", "Free Frank"):
        people[name] = licensed(PersonFactory(organization=org, display_name=name,
                                              usage_location="US"),
                                "MCOEV", "MCOPSTN1", "MCOPSTNC")
    for name in ("Over Olga", "Near Nina", "Fine Fred"):
        person_spend_limit_set(person=people[name], monthly_limit="10", actor="test")
    spend_limit_set(organization=org, monthly_limit="200", actor="test")
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    # 0.05/min: Olga 240 min = 12.00 (120 %), Nina 170 min = 8.50 (85 %),
    # Fred 100 min = 5.00 (50 %), Frank (no limit) 400 min = 20.00. Org: 45.50 of 200.00.
    for i, (name, minutes) in enumerate((("Over Olga", 240), ("Near Nina", 170),
                                         ("Fine Fred", 100), ("Free Frank", 400))):
        call(org, f"rep-{i}", people[name], minutes, start)
    client = client_for(make_person("global_administrator"))
    page = client.get("/reports/pstn-usage/?range=7").content.decode()
    assert "$45.50 of $200.00 spent this month (22%)" in page
    assert "Over Olga" in page and "120%" in page and "85%" in page
    near = client.get("/reports/pstn-usage/?range=7&limit=near").content.decode()
    # The calls and totals are those of Olga and Nina: 240 + 170 minutes, 20.50.
    assert 'data-tile="charge">$20.50<' in near
    assert "Fine Fred" not in near and "Free Frank" not in near
    over = client.get("/reports/pstn-usage/?range=7&limit=over").content.decode()
    assert 'data-tile="charge">$12.00<' in over
    bad = client.get("/reports/pstn-usage/?range=7&limit=lots")
    assert bad.status_code == 200 and "limit: Not a value of this list." in \
        bad.content.decode()
