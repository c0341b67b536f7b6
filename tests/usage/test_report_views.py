"""The PSTN usage report page: access, filters in the URL, htmx partial, columns, masking,
and a bounded number of queries whatever the number of calls."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.models import Organization
from credits.templatetags.dates import format_day
from tests.factories import PersonFactory, call_record
from usage.models import CallRecord, ReportColumnPreference
from usage.rollups import rollups_add_calls

URL = "/reports/pstn-usage/"


def recent(hours_ago=2):
    return timezone.now().astimezone(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)


def store(org, records):
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    return records


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Bea Billing")


@pytest.fixture
def alice(org):
    return PersonFactory(organization=org, display_name="Alice Martin",
                         upn="alice@contoso.example")


@pytest.fixture
def some_calls(org, alice):
    return store(org, [
        call_record(org, person=alice, start=recent(2), charge=Decimal("1.25"),
                    callee_number="+33123456789"),
        call_record(org, person=alice, start=recent(30), charge=Decimal("0.75"),
                    destination_context="Domestic", destination_name="United States",
                    callee_number="+12125550100", charged_to="plan_pool"),
    ])


def test_billing_admin_sees_tiles_charts_and_rows(client_for, billing_admin, some_calls):
    response = client_for(billing_admin).get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-tile="calls">2<' in html
    assert 'data-tile="charge">$2.00<' in html
    assert html.count('class="chart__svg"') == 3  # calls, minutes, credits (test_report_charts)
    assert "Alice Martin" in html and "$1.25" in html
    assert "Export to Excel" in html and "Data as of" in html


def test_global_reader_sees_aggregates_but_no_call_rows(client_for, make_person, some_calls):
    reader = make_person("global_reader")
    client = client_for(reader)
    html = client.get(URL).content.decode()
    assert 'data-tile="calls">2<' in html
    assert "+33123456789" not in html and "Export to Excel" not in html
    assert client.post("/reports/pstn-usage/export/", {"format": "xlsx"}).status_code == 403


def test_filters_are_read_from_the_url(client_for, billing_admin, some_calls):
    html = client_for(billing_admin).get(
        URL, {"range": "7", "context": "international", "charged_to": "credits"}
    ).content.decode()
    assert 'data-tile="calls">1<' in html
    assert 'data-tile="charge">$1.25<' in html
    assert 'value="international" selected' in html


def test_htmx_gets_the_body_only_and_the_page_varies_on_it(client_for, billing_admin,
                                                           some_calls):
    client = client_for(billing_admin)
    partial = client.get(URL, {"range": "7"}, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    assert b"<html" not in partial.content and b'data-tile="calls"' in partial.content
    assert "HX-Request" in partial["Vary"]
    full = client.get(URL, {"range": "7"})
    assert b"<html" in full.content


def test_numbers_are_masked_for_a_french_organization(client_for, make_person):
    fr = Organization.objects.create(name="Fabrikam", slug="fab-fr", country="FR",
                                     currency="EUR", billing_region="FR")
    admin = make_person("billing_administrator", organization=fr)
    store(fr, [call_record(fr, start=recent(1), callee_number="+33123456789",
                           caller_number="+33999999999")])
    ReportColumnPreference.objects.create(person=admin, columns=["user", "destination_number"],
                                          updated_at=timezone.now())
    html = client_for(admin).get(URL).content.decode()
    assert "+3312345****" in html and "+33123456789" not in html


def test_column_choice_persists_per_person(client_for, billing_admin, some_calls):
    client = client_for(billing_admin)
    response = client.post("/reports/pstn-usage/columns/",
                           {"columns": ["upn", "charge", "rate", "bogus"], "next": URL})
    assert response.status_code == 302 and response["Location"] == URL
    assert ReportColumnPreference.objects.get(person=billing_admin).columns == [
        "upn", "charge", "rate"]
    html = client.get(URL).content.decode()
    assert "alice@contoso.example" in html and "$0.05" in html
    assert "Destination dialed</a>" not in html


def test_the_column_chooser_refuses_to_redirect_off_site(client_for, billing_admin):
    response = client_for(billing_admin).post(
        "/reports/pstn-usage/columns/", {"columns": ["upn"], "next": "https://evil.example/"})
    assert response["Location"] == URL


def test_a_person_name_filters_the_report_to_them(client_for, billing_admin, some_calls,
                                                  alice):
    # Issue 19: the name narrows the report; the license editor is one click further.
    client = client_for(billing_admin)
    html = client.get(URL).content.decode()
    assert 'href="/reports/pstn-usage/?range=28&amp;user=alice%40contoso.example"' in html
    assert f'href="/users/{alice.pk}/licenses/"' not in html
    focused = client.get(URL, {"user": "alice@contoso.example"}).content.decode()
    assert "Showing the calls of Alice Martin." in focused
    assert f'href="/users/{alice.pk}/licenses/" data-link="person-licenses"' in focused


def test_next_page_link_continues_the_table(client_for, billing_admin, org, alice):
    store(org, [call_record(org, person=alice, start=recent(1 + i)) for i in range(60)])
    client = client_for(billing_admin)
    html = client.get(URL).content.decode()
    table = html.split("table--calls", 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + 50  # the header and a page of rows
    link = html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    html2 = client.get(URL + link.replace("&amp;", "&")).content.decode()
    assert 'rel="prev"' in html2 and 'rel="next"' not in html2


def test_french_page_formats_money_the_french_way(client_for, make_person, some_calls):
    admin = make_person("billing_administrator", preferred_language="fr")
    html = client_for(admin).get(URL).content.decode()
    assert "2,00\xa0$US" in html or "2,00\u202f$US" in html


@pytest.mark.parametrize("count", [5, 120])
def test_query_count_does_not_grow_with_the_calls(client_for, billing_admin, org, count,
                                                   django_assert_max_num_queries):
    people = [PersonFactory(organization=org) for _ in range(3)]
    store(org, [call_record(org, person=people[i % 3], start=recent(1 + i % 300))
                for i in range(count)])
    client = client_for(billing_admin)
    client.get(URL)  # warm the session
    # Two more than the tiles, rows and tables need, both constant: the charts split by call
    # type and by payer (one grouped read of the rollups), and the monthly spend limits
    # (the organization's limit, its month's spend and whether anybody has a limit in one
    # read; the people's lines only when somebody has one, and nobody does here).
    with django_assert_max_num_queries(16):
        assert client.get(URL, {"user": "person"}).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(URL, {"sort": "-charge"}).status_code == 200


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(URL).status_code == 302


def test_data_as_of_shows_the_last_update(client_for, billing_admin, some_calls):
    html = client_for(billing_admin).get(URL).content.decode()
    # Dates read in the page's language (credits.templatetags.dates): "Nov 30, 2026, ...".
    assert f"Data as of {format_day(datetime.now(UTC), 'en')}, " in html


@pytest.mark.parametrize("query", [
    {"range": "custom", "from": "9999-12-31", "to": "9999-12-31"},
    {"range": "custom", "from": "0001-01-01", "to": "2026-01-01"},
    {"range": "custom", "from": "x", "to": "\x00"},
    {"range": "1000"}, {"sort": "-password"}, {"after": "e30"}, {"before": "!!"},
    {"user": "%" * 300}, {"call_type": "'; drop table"}, {"capability": "<script>"},
])
def test_odd_parameters_never_break_the_page(client_for, billing_admin, some_calls, query):
    response = client_for(billing_admin).get(URL, query)
    assert response.status_code == 200
    assert b"<script>" not in response.content.split(b"</head>", 1)[1]
