"""Issue 19: the usage pages read in words and localized numbers (names beside Microsoft's
codes, thousands separators, rates at 4 decimals)."""

from decimal import Decimal

import pytest

from tests.factories import PersonFactory, call_record
from tests.usage.test_report_views import recent, store

URL = "/reports/pstn-usage/"


@pytest.fixture
def many_calls(org):
    person = PersonFactory(organization=org, upn="alice@contoso.example")
    start = recent(0)
    return store(org, [call_record(org, person=person, start=start, charge=Decimal("0.01"),
                                   rate_per_minute=Decimal("0.024"))
                       for _ in range(1055)])


@pytest.mark.django_db
def test_report_and_home_count_with_thousands_separators(admin_client, many_calls):
    body = admin_client.get(URL).content.decode()
    assert 'data-tile="calls">1,055<' in body
    assert "1,055 items" in body
    assert "Outbound call" in body and ">user_out<" in body  # the name, with the code beside
    assert "Outbound call (user_out)" in body  # the call-type filter
    home = admin_client.get("/").content.decode()
    assert "1,055 calls" in home and "1055 calls" not in home


@pytest.mark.django_db
def test_report_in_french(make_person, client, many_calls):
    person = make_person("global_administrator", preferred_language="fr")
    client.force_login(person.user)
    body = client.get(URL).content.decode()
    assert "Appel sortant" in body
    assert "1\u202f055 éléments" in body or "1\xa0055 éléments" in body
