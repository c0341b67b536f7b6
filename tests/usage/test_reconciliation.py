"""Reports > Reconciliation: Microsoft's reported charges beside this system's rating.

The sums are checked against sums computed here from the stored call records; the rollups
are kept by ingestion (both databases) and equal a rebuild; the largest differences are the
true top of the range; the workbook is read back with openpyxl."""

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.utils import timezone

from credits.models import Organization
from tests.conftest import requires_postgres
from tests.factories import PersonFactory, call_record, graph_row, load_test_deck
from tests.usage.conftest import fund
from usage import pg
from usage.models import CallRecord, ReconciliationRollup, ReconciliationTopCall
from usage.models.reconciliation import TOP_PER_DAY
from usage.reconciliation_rollups import reconciliation_add_calls
from usage.rollups import rollups_add_calls, rollups_rebuild
from usage.services import calls_ingest

URL = "/reports/reconciliation/"
EXPORT = "/reports/reconciliation/export/"


def recent(hours_ago=2):
    return timezone.now().astimezone(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)


def store(org, records):
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    reconciliation_add_calls(organization=org, records=records)
    return records


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Bea Billing")


@pytest.fixture
def alice(org):
    return PersonFactory(organization=org, display_name="Alice Martin",
                         upn="alice@contoso.example")


@pytest.fixture
def bob(org):
    return PersonFactory(organization=org, display_name="Bob Stone",
                         upn="bob@contoso.example")


@pytest.fixture
def mixed(org, alice, bob):
    """Alice: France, rated 1.25 / reported 1.00 and rated 0.75 / reported 0.80 (USD);
    Bob: UK, rated 2.00 / reported 2.00; one call reported in EUR; one not reported."""
    return store(org, [
        call_record(org, person=alice, start=recent(2), charge=Decimal("1.25"),
                    reported_charge=Decimal("1.00000"), graph_id="a-1"),
        call_record(org, person=alice, start=recent(30), charge=Decimal("0.75"),
                    reported_charge=Decimal("0.80000"), graph_id="a-2"),
        call_record(org, person=bob, start=recent(3), charge=Decimal("2.00"),
                    reported_charge=Decimal("2.00000"), destination_country="GB",
                    callee_number="+447700900123", graph_id="b-1"),
        call_record(org, person=bob, start=recent(4), charge=Decimal("0.40"),
                    reported_charge=Decimal("0.33000"), currency="EUR",
                    destination_country="GB", graph_id="b-eur"),
        call_record(org, person=bob, start=recent(5), charge=Decimal("0.30"),
                    reported_charge=None, graph_id="b-none"),
    ])


def _table(html: str, name: str) -> str:
    return html.split(f'data-table="{name}"', 1)[1].split("</table>", 1)[0]


def test_totals_compare_only_the_calls_reported_in_the_organization_currency(
        client_for, billing_admin, mixed):
    html = client_for(billing_admin).get(URL).content.decode()
    assert 'data-tile="reported">$3.80<' in html
    assert 'data-tile="rated">$4.00<' in html
    assert 'data-tile="difference" data-sign="more">$0.20<' in html
    # The EUR call is listed apart, in euros, not converted; the unreported one is counted.
    assert "EUR: 1 call, reported €0.33, rated $0.40" in html
    assert 'data-tile="not-compared">1<' in html


def test_per_day_per_user_and_per_destination(client_for, billing_admin, mixed):
    client = client_for(billing_admin)
    today = recent(2).date()
    by_day = _table(client.get(URL).content.decode(), "groups")
    assert today.isoformat() in by_day
    by_user = _table(client.get(URL, {"group": "user"}).content.decode(), "groups")
    alice_row = by_user.split("Alice Martin", 1)[1].split("</tr>", 1)[0]
    assert "$1.80" in alice_row and "$2.00" in alice_row and "$0.20" in alice_row
    bob_row = by_user.split("Bob Stone", 1)[1].split("</tr>", 1)[0]
    assert bob_row.count("$2.00") == 2 and "$0.00" in bob_row
    # Largest difference first.
    assert by_user.index("Alice Martin") < by_user.index("Bob Stone")
    html = client.get(URL, {"group": "destination"}).content.decode()
    by_place = _table(html, "groups")
    assert "France" in by_place and "United Kingdom" in by_place
    apart = _table(html, "apart")
    assert "EUR" in apart and "€0.33" in apart and "Not reported" in apart


def test_the_largest_differences_show_both_rate_details(client_for, billing_admin, mixed):
    html = client_for(billing_admin).get(URL).content.decode()
    top = _table(html, "top")
    rows = top.split("<tbody>", 1)[1].split("</tr>")
    # a-1 (0.25) before a-2 (-0.05); equal, EUR and unreported calls are not listed.
    assert "+33123456789" in rows[0] and "$1.00" in rows[0] and "$1.25" in rows[0]
    assert "$0.25" in rows[0] and "$0.05" in rows[0] and "USD" in rows[0]
    assert "−$0.05" in rows[1] or "-$0.05" in rows[1]
    assert "+447700900123" not in top
    assert top.count("<tr>") == 2 + 2  # two header rows, two calls


def test_the_top_list_is_the_true_top_of_the_range_and_kept_small(org, client_for,
                                                                  billing_admin, alice):
    # 3 batches over 2 days: each day keeps only its TOP_PER_DAY largest differences.
    start = recent(30)
    for batch in range(3):
        store(org, [call_record(org, person=alice, start=start + timedelta(hours=h % 26),
                                charge=Decimal("1.00"), graph_id=f"t-{batch}-{h}",
                                reported_charge=Decimal(batch * 40 + h) / 100)
                    for h in range(40)])
    days = ReconciliationTopCall.objects.filter(organization=org).values_list("day",
                                                                               flat=True)
    assert all(list(days).count(d) <= TOP_PER_DAY for d in set(days))
    assert ReconciliationTopCall.objects.count() < 120  # every call differs
    calls = CallRecord.objects.filter(organization=org)
    expected = sorted(calls, key=lambda c: (-abs(c.charge - c.reported_charge), c.graph_id))
    from usage.reconciliation import reconciliation_top_calls
    from usage.report import ReportFilters

    filters = ReportFilters(start=start.date() - timedelta(days=1), end=recent(0).date())
    top = reconciliation_top_calls(organization=org, filters=filters)
    assert [t.call.graph_id for t in top] == [c.graph_id for c in expected[:50]]
    assert [t.difference for t in top] == [c.charge - c.reported_charge
                                           for c in expected[:50]]
    html = client_for(billing_admin).get(URL).content.decode()
    assert _table(html, "top").count("<tr>") == 2 + 50
    kept = _top_rows(org)
    rollups_rebuild(organization=org)
    assert _top_rows(org) == kept


def _rollup_rows(org):
    return sorted(ReconciliationRollup.objects.filter(organization=org).values_list(
        "day", "person_key", "upn", "destination_country", "currency", "calls", "unrated",
        "reported_charge", "rated_charge"))


def _top_rows(org):
    return sorted(ReconciliationTopCall.objects.filter(organization=org).values_list(
        "day", "graph_id", "difference", "gap"))


def test_ingestion_keeps_the_rollups_in_the_transaction_equal_to_a_rebuild(org):
    load_test_deck(org)
    fund(org, "100")
    alice = PersonFactory(organization=org, upn="alice@contoso.com", usage_location="US")
    rows = [
        graph_row("r1", userPrincipalName=alice.upn, calleeNumber="+33123456789",
                  duration=125, charge=0.1),
        graph_row("r2", userPrincipalName=alice.upn, calleeNumber="+33123456789",
                  duration=61, charge=0.05, startDateTime="2026-11-03T23:59:00Z"),
        graph_row("r3", calleeNumber="+447700900123", duration=300, charge=0.3,
                  currency="GBP"),
        graph_row("r4", duration=30, charge=None, currency=None),
        graph_row("r5", callType="teleport", duration=30, charge=0.5),  # not rated
    ]
    calls_ingest(organization=org, rows=rows[:3], source="api")
    calls_ingest(organization=org, rows=rows[2:], source="api")  # r3 is a duplicate
    stored = list(CallRecord.objects.filter(organization=org))
    assert len(stored) == 5
    ingested = _rollup_rows(org)
    # The sums, computed here from the call records.
    expected: dict = {}
    for c in stored:
        cur = c.currency if c.reported_charge is not None and c.currency else ""
        key = (c.start_at.astimezone(UTC).date(), c.person_id or 0,
               "" if c.person_id else c.upn, c.destination_country, cur)
        calls, unrated, reported, rated = expected.get(key, (0, 0, 0, 0))
        expected[key] = (calls + 1, unrated + (not c.rated),
                         reported + (c.reported_charge or 0), rated + c.charge)
    assert [(*k, *v) for k, v in sorted(expected.items())] == ingested
    assert {r[4] for r in ingested} == {"USD", "GBP", ""}
    assert sum(r[6] for r in ingested) == 1  # the teleport call
    top = _top_rows(org)
    assert {g for _d, g, _x, _y in top} == {
        c.graph_id for c in stored
        if c.currency == "USD" and c.reported_charge is not None
        and c.charge != c.reported_charge}
    rollups_rebuild(organization=org)
    assert _rollup_rows(org) == ingested
    assert _top_rows(org) == top


def test_a_failed_batch_leaves_no_reconciliation_rows(org, monkeypatch):
    from usage import services

    def boom(**kwargs):
        raise RuntimeError("charging failed")

    monkeypatch.setattr(services, "credits_charge_usage_batch", boom)
    load_test_deck(org)
    with pytest.raises(RuntimeError):
        calls_ingest(organization=org, rows=[graph_row("f1", calleeNumber="+33123456789",
                                                       charge=0.01)], source="api")
    assert not ReconciliationRollup.objects.exists()
    assert not ReconciliationTopCall.objects.exists()


def test_the_workbook_has_typed_sheets_per_grouping(client_for, billing_admin, mixed):
    response = client_for(billing_admin).get(EXPORT, {"range": "7"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Summary", "By day", "By user", "By destination",
                               "Not compared", "Largest differences", "Parameters"]
    day = book["By day"]
    assert [c.value for c in day[1]] == ["Day", "Calls", "Not rated", "Reported (USD)",
                                        "Rated (USD)", "Difference (USD)"]
    days = list(day.iter_rows(min_row=2, values_only=True))
    assert all(isinstance(r[0], datetime) for r in days)
    assert sum(r[1] for r in days) == 3
    assert round(sum(r[3] for r in days), 5) == 3.8
    assert round(sum(r[5] for r in days), 5) == 0.2
    users = {r[1]: r for r in book["By user"].iter_rows(min_row=2, values_only=True)}
    assert users["alice@contoso.example"][2:] == (2, 0, 1.8, 2.0, pytest.approx(0.2))
    places = {r[0]: r for r in book["By destination"].iter_rows(min_row=2,
                                                                 values_only=True)}
    assert set(places) == {"FR", "GB"}
    apart = list(book["Not compared"].iter_rows(min_row=2, values_only=True))
    assert {(r[0], r[5]) for r in apart} == {(g, c) for g in ("day", "user", "destination")
                                             for c in ("EUR", None)}
    eur = next(r for r in apart if r[0] == "user" and r[5] == "EUR")
    assert eur[6:] == (1, 0.33, 0.4)
    top = list(book["Largest differences"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in top] == ["a-1", "a-2"]
    assert isinstance(top[0][0], datetime)
    assert top[0][8:11] == (1.0, None, "USD") and top[0][16:18] == (1.25, 0.25)
    assert top[0][12] == 0.05 and top[0][14] == 2.0 and top[0][15] == "credits"
    params = {r[0]: r[1] for r in book["Parameters"].iter_rows(values_only=True)}
    assert params["Currency"] == "USD" and isinstance(params["From (UTC)"], datetime)


def test_a_global_reader_sees_the_sums_but_no_calls(client_for, make_person, mixed):
    client = client_for(make_person("global_reader"))
    html = client.get(URL).content.decode()
    assert 'data-tile="rated">$4.00<' in html
    assert 'data-table="top"' not in html and "+33123456789" not in html
    book = openpyxl.load_workbook(io.BytesIO(client.get(EXPORT).content))
    assert "Largest differences" not in book.sheetnames and "By user" in book.sheetnames


@pytest.mark.parametrize("url", [URL, EXPORT])
def test_people_without_the_usage_report_are_refused(client_for, make_person, mixed, url):
    assert client_for(make_person("license_administrator")).get(url).status_code == 403


def test_another_organization_sees_none_of_it(client_for, make_person, mixed, other_org):
    html = client_for(make_person("billing_administrator", organization=other_org)).get(
        URL).content.decode()
    assert 'data-tile="rated">0,00' in html or 'data-tile="rated">€0.00<' in html
    assert "Alice Martin" not in html


def test_the_page_is_linked_from_the_navigation_and_the_usage_report(client_for,
                                                                     billing_admin):
    client = client_for(billing_admin)
    html = client.get("/reports/pstn-usage/", {"range": "90"}).content.decode()
    assert 'href="/reports/reconciliation/?range=90"' in html
    assert '<a href="/reports/reconciliation/" aria-current="page">Reconciliation</a>' in \
        client.get(URL).content.decode()


def test_the_page_speaks_french(client_for, make_person, mixed):
    admin = make_person("billing_administrator", preferred_language="fr")
    html = client_for(admin).get(URL, {"group": "destination"}).content.decode()
    assert "Rapprochement" in html and "Écarts les plus importants" in html
    assert "Royaume-Uni" in html and "3 appels déclarés en USD" in html
    assert "4,00\xa0$US" in html or "4,00\u202f$US" in html


def test_the_numbers_are_masked_for_a_masking_country(client_for, make_person):
    fr = Organization.objects.create(name="Fabrikam", slug="fab-fr", country="FR",
                                     currency="EUR", billing_region="FR")
    admin = make_person("billing_administrator", organization=fr)
    store(fr, [call_record(fr, start=recent(1), callee_number="+33123456789",
                           currency="EUR", reported_charge=Decimal("0.01"))])
    client = client_for(admin)
    assert "+3312345****" in _table(client.get(URL).content.decode(), "top")
    book = openpyxl.load_workbook(io.BytesIO(client.get(EXPORT).content))
    assert book["Largest differences"]["F2"].value == "+3312345****"


@pytest.mark.parametrize("query", [
    {"range": "custom", "from": "9999-12-31", "to": "x"}, {"group": "<script>"},
    {"range": "1000"}, {"range": "custom", "from": "2026-01-01", "to": "\x00"},
])
def test_odd_parameters_never_break_the_page(client_for, billing_admin, mixed, query):
    for url in (URL, EXPORT):
        assert client_for(billing_admin).get(url, query).status_code == 200


def test_a_custom_range_reads_only_its_days(client_for, billing_admin, org, alice):
    day = date(2026, 11, 2)
    store(org, [call_record(org, person=alice, charge=Decimal("1.00"),
                            reported_charge=Decimal("0.50"), graph_id=f"d-{i}",
                            start=datetime(2026, 11, 1 + i, 12, tzinfo=UTC))
                for i in range(3)])
    html = client_for(billing_admin).get(URL, {"range": "custom", "from": day.isoformat(),
                                               "to": day.isoformat()}).content.decode()
    assert 'data-tile="difference" data-sign="more">$0.50<' in html
    assert "d-1" not in html and _table(html, "top").count("<tr>") == 3


@pytest.mark.parametrize("count", [5, 120])
def test_query_count_does_not_grow_with_the_calls(client_for, billing_admin, org, count,
                                                   django_assert_max_num_queries):
    people = [PersonFactory(organization=org) for _ in range(3)]
    store(org, [call_record(org, person=people[i % 3], start=recent(1 + i % 300),
                            reported_charge=Decimal(i) / 100) for i in range(count)])
    client = client_for(billing_admin)
    client.get(URL)
    for group in ("day", "user", "destination"):
        with django_assert_max_num_queries(12):
            assert client.get(URL, {"group": group}).status_code == 200


# --- PostgreSQL: the statement of ingestion and the portable version agree --------------


@pytest.fixture
def portable(monkeypatch):
    def run(function, *args, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(pg, "available", lambda: False)
            return function(*args, **kwargs)

    return run


@requires_postgres
def test_the_database_adds_what_python_adds(org, alice, portable):
    records = [call_record(org, person=alice if i % 2 else None, graph_id=f"p-{i}",
                           start=datetime(2026, 11, 2 + i % 3, i % 24, tzinfo=UTC),
                           charge=Decimal(i) / 10, destination_country=["FR", "", "GB"][i % 3],
                           reported_charge=[None, Decimal("0.12345"), Decimal(i) / 7][i % 3]
                           .quantize(Decimal("0.00001")) if i % 3 else None,
                           currency=["USD", "EUR", "USD", ""][i % 4], rated=bool(i % 5))
               for i in range(900)]
    CallRecord.objects.bulk_create(records)
    halves = (records[:500], records[500:])  # the second half adds to the first's rows

    def by_database():
        for half in halves:
            pg.rollups_add_stored(organization=org, graph_ids=[r.graph_id for r in half])

    def in_python():
        for half in halves:
            reconciliation_add_calls(organization=org, records=half)

    results = []
    for run in (by_database, in_python, lambda: portable(in_python)):
        ReconciliationRollup.objects.all().delete()
        ReconciliationTopCall.objects.all().delete()
        run()
        results.append((_rollup_rows(org), _top_rows(org)))
    assert results[0] == results[1] == results[2]
    assert sum(r[5] for r in results[0][0]) == 900
    # Two of the three days have calls reported in dollars, each trimmed to its top.
    assert len(results[0][1]) == 2 * TOP_PER_DAY
    rollups_rebuild(organization=org)
    assert (_rollup_rows(org), _top_rows(org)) == results[0]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_keep_the_rollups_equal_to_a_rebuild(org, tmp_path):
    """Three processes post overlapping batches to the API at once: every day's top list
    and sums end as a rebuild from the stored calls makes them."""
    import json
    import os
    import random
    import subprocess
    import sys

    from django.conf import settings

    from credits.platform.services import Actor
    from tests.usage.test_reliability import _url
    from usage.services import api_token_create

    load_test_deck(org)
    fund(org, 500)
    _t, token = api_token_create(organization=org, name="rec", actor=Actor.system("test"))
    rng = random.Random(16)
    start = datetime(2026, 11, 2, 20, tzinfo=UTC)
    universe = [graph_row(f"c-{i}", calleeNumber=rng.choice(["+33123456789", "+447700900123",
                                                            "+12125550100"]),
                          userPrincipalName=rng.choice(["a@x.example", "b@x.example"]),
                          duration=rng.randint(1, 900), charge=rng.randint(0, 300) / 100,
                          currency=rng.choice(["USD", "USD", "USD", "EUR", None]),
                          startDateTime=(start + timedelta(seconds=97 * i)).isoformat())
                for i in range(900)]
    env = {**os.environ, "DATABASE_URL": _url(), "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    procs = []
    for p in range(3):
        rows = universe[p * 300:(p + 1) * 300] + rng.sample(universe, 100)
        rng.shuffle(rows)
        (tmp_path / f"b{p}.json").write_text(json.dumps([rows[i:i + 100]
                                                         for i in range(0, 400, 100)]))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.usage.ingest_worker", str(tmp_path / f"b{p}.json"),
             str(tmp_path / f"r{p}.json"), token],
            cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE))
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-3000:]
    assert CallRecord.objects.filter(organization=org).count() == 900
    ingested = (_rollup_rows(org), _top_rows(org))
    assert sum(r[5] for r in ingested[0]) == 900
    assert len(ingested[1]) == 2 * TOP_PER_DAY  # the calls span two UTC days
    rollups_rebuild(organization=org)
    assert (_rollup_rows(org), _top_rows(org)) == ingested
