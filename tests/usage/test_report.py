"""Report selectors and daily rollups: the sums the tiles show equal the call records."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from tests.factories import PersonFactory, call_record
from usage import report
from usage.models import CallRecord, UsageDestinationRollup, UsageRollup
from usage.records import COLUMNS, CallRecordRow
from usage.rollups import rollups_add_calls, rollups_rebuild

DAY = date(2026, 11, 2)


def at(day_offset=0, hour=9, minute=0):
    return datetime(2026, 11, 2, hour, minute, tzinfo=UTC) + timedelta(days=day_offset)


def store(org, records):
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    return records


def filters(**kw):
    base = {"start": DAY - timedelta(days=27), "end": DAY + timedelta(days=7)}
    base.update(kw)
    return report.ReportFilters(**base)


def rollup_sums(org):
    return {
        (r["day"], r["call_type"]): (r["calls"], r["duration_s"], r["charge"])
        for r in UsageRollup.objects.filter(organization=org).values("day", "call_type")
        .annotate(calls=Sum("calls"), duration_s=Sum("duration_s"), charge=Sum("charge"))
    }


@pytest.fixture
def alice(org):
    return PersonFactory(organization=org, display_name="Alice Martin",
                         upn="alice@contoso.example")


@pytest.fixture
def bob(org):
    return PersonFactory(organization=org, display_name="Bob Stone", upn="bob@contoso.example")


@pytest.fixture
def calls(org, alice, bob):
    return store(org, [
        call_record(org, person=alice, start=at(0), duration_s=120, charge=Decimal("0.10")),
        call_record(org, person=alice, start=at(0, 10), duration_s=61, charge=Decimal("0.20"),
                    destination_context="Domestic", destination_name="United States",
                    callee_number="+12125550100", charged_to="plan_pool", pool_minutes=2,
                    credit_seconds=0, capability="MCOPSTN1"),
        call_record(org, person=bob, start=at(1), duration_s=300, charge=Decimal("1.50"),
                    destination_name="Germany", callee_number="+4930123456"),
        call_record(org, person=None, start=at(1, 11), duration_s=30, charge=Decimal("0.00"),
                    call_type="ucap_in", charged_to="free", destination_context="",
                    destination_name="", credit_seconds=0, billable_seconds=0),
        call_record(org, person=bob, start=at(-40), duration_s=60, charge=Decimal("9.99")),
    ])


def test_rollups_added_at_ingestion_equal_a_rebuild_from_the_call_records(org, calls):
    added = rollup_sums(org)
    assert rollups_rebuild(organization=org) == 5
    assert rollup_sums(org) == added
    merged: dict = {}
    for r in CallRecord.objects.filter(organization=org):
        key = (r.start_at.date(), r.call_type)
        n, secs, charge = merged.get(key, (0, 0, Decimal(0)))
        merged[key] = (n + 1, secs + r.duration_s, charge + r.charge)
    assert added == merged


def test_two_batches_on_the_same_day_add_up_instead_of_overwriting(org, alice):
    store(org, [call_record(org, person=alice, start=at(0), charge=Decimal("0.10"))])
    store(org, [call_record(org, person=alice, start=at(0, 15), charge=Decimal("0.25"))])
    row = UsageRollup.objects.get(organization=org)
    assert (row.calls, row.charge, row.duration_s) == (2, Decimal("0.35"), 240)
    place = UsageDestinationRollup.objects.get(organization=org)
    assert (place.destination, place.calls) == ("France", 2)


def test_ingestion_rows_roll_up_like_model_instances(org, alice):
    records = [call_record(org, person=alice, start=at(0), charge=Decimal("0.40"))]
    rows = [CallRecordRow(**{c: getattr(r, c) for c in COLUMNS}) for r in records]
    rollups_add_calls(organization=org, records=rows)
    row = UsageRollup.objects.get(organization=org)
    assert (row.person_key, row.upn, row.context, row.charge) == (
        alice.pk, "", "international", Decimal("0.40"))


def test_call_record_row_names_every_column_but_the_id_in_table_order():
    columns = [f.column for f in CallRecord._meta.concrete_fields if f.column != "id"]
    assert list(COLUMNS) == columns


def test_a_call_of_nobody_in_the_directory_keeps_its_upn(org):
    store(org, [call_record(org, person=None, upn="aa@contoso.example", start=at(0))])
    row = UsageRollup.objects.get(organization=org)
    assert (row.person_key, row.upn, row.user_name) == (0, "aa@contoso.example",
                                                       "Auto attendant")


def test_rebuild_of_a_range_leaves_other_days_alone(org, calls):
    UsageRollup.objects.filter(organization=org, day=DAY - timedelta(days=40)).update(calls=99)
    rollups_rebuild(organization=org, start=DAY, end=DAY + timedelta(days=1))
    assert UsageRollup.objects.get(organization=org, day=DAY - timedelta(days=40)).calls == 99
    rollups_rebuild(organization=org, start=DAY - timedelta(days=40),
                    end=DAY - timedelta(days=40))
    assert UsageRollup.objects.get(organization=org, day=DAY - timedelta(days=40)).calls == 1


def test_ingestion_keeps_rollups_current(org, alice):
    from tests.factories import graph_row
    from usage import services

    services.calls_ingest(organization=org, rows=[graph_row("g-1"), graph_row("g-2")],
                          source="api")
    assert UsageRollup.objects.filter(organization=org).aggregate(n=Sum("calls"))["n"] == 2


# --- filters -----------------------------------------------------------------------------


def test_default_range_is_the_last_28_days_including_today():
    f, errors = report.filters_from_query({}, today=DAY)
    assert (f.start, f.end, f.range, errors) == (DAY - timedelta(days=27), DAY, "28", {})


def test_a_custom_range_is_taken_and_a_wrong_one_falls_back_with_an_error():
    f, errors = report.filters_from_query({"range": "custom", "from": "2026-10-01",
                                           "to": "2026-10-31"}, today=DAY)
    assert (f.start, f.end, errors) == (date(2026, 10, 1), date(2026, 10, 31), {})
    f, errors = report.filters_from_query({"range": "custom", "from": "2026-10-31",
                                           "to": "2026-10-01"}, today=DAY)
    assert f.range == "28" and "to" in errors


def test_unknown_filter_values_are_dropped_and_named():
    f, errors = report.filters_from_query({"call_type": "teleport", "context": "domestic",
                                           "charged_to": "gold"}, today=DAY)
    assert (f.call_type, f.context, f.charged_to) == ("", "domestic", "")
    assert set(errors) == {"call_type", "charged_to"}


def test_filters_survive_the_round_trip_through_an_export_row():
    f = filters(user="alice", context="international", charged_to="credits")
    assert report.ReportFilters.from_dict(f.as_dict()) == f


# --- tiles, series, top lists --------------------------------------------------------------


def test_totals_of_the_range_leave_out_calls_before_it(org, calls):
    t = report.report_totals(organization=org, filters=filters(), match=None)
    assert (t.calls, t.duration_s, t.charge) == (4, 511, Decimal("1.80"))
    assert t.minutes == Decimal("8.5")
    # Every charge over the seconds paid with credits (120 + 300; the pool call has none).
    assert t.cost_per_minute == (Decimal("1.80") * 60 / 420).quantize(Decimal("0.0001"))


def test_international_paid_by_credits_sums_only_those_calls(org, calls):
    f = filters(context="international", charged_to="credits")
    t = report.report_totals(organization=org, filters=f, match=None)
    assert (t.calls, t.charge) == (2, Decimal("1.60"))


def test_the_daily_series_has_every_day_of_the_range(org, calls):
    days = report.report_daily(organization=org, filters=filters(), match=None)
    assert len(days) == 35
    by_day = {d.day: d.totals.calls for d in days}
    assert by_day[DAY] == 2 and by_day[DAY + timedelta(days=1)] == 2
    assert sum(by_day.values()) == 4


def test_user_search_finds_people_by_name_or_upn_and_unknown_upns(org, calls, alice):
    f = filters(user="martin")
    match = report.user_match(organization=org, filters=f)
    assert match.person_ids == (alice.pk,)
    assert report.report_totals(organization=org, filters=f, match=match).calls == 2
    f = filters(user="aa@contoso")
    match = report.user_match(organization=org, filters=f)
    assert match.upns == ("aa@contoso.example",)
    assert report.report_totals(organization=org, filters=f, match=match).calls == 1


def test_a_user_search_that_finds_nobody_shows_nothing(org, calls):
    f = filters(user="zed")
    match = report.user_match(organization=org, filters=f)
    assert match.empty
    assert report.report_totals(organization=org, filters=f, match=match).calls == 0
    page = report.report_rows_page(organization=org, filters=f, match=match)
    assert page.rows == []


def test_top_spenders_are_ordered_by_credits_spent(org, calls, alice, bob):
    spenders = report.report_top_spenders(organization=org, filters=filters(), match=None)
    assert [(s.name, s.totals.charge) for s in spenders] == [
        ("Bob Stone", Decimal("1.50")), ("Alice Martin", Decimal("0.30"))]
    assert spenders[0].person_id == bob.pk


def test_top_destinations_with_and_without_a_user_filter(org, calls):
    tops = report.report_top_destinations(organization=org, filters=filters(), match=None)
    assert {d.name: d.totals.calls for d in tops} == {
        "France": 1, "United States": 1, "Germany": 1, "": 1}
    f = filters(user="bob")
    tops = report.report_top_destinations(
        organization=org, filters=f, match=report.user_match(organization=org, filters=f))
    assert [(d.name, d.totals.calls) for d in tops] == [("Germany", 1)]


def test_another_organization_sees_none_of_these_calls(other_org, calls):
    assert report.report_totals(organization=other_org, filters=filters(), match=None).calls == 0


# --- keyset paging ----------------------------------------------------------------------------


@pytest.fixture
def many(org, alice):
    # 23 calls, some sharing a start time, so ties are broken by id.
    return store(org, [
        call_record(org, person=alice, start=at(i % 5, 8 + i // 5), duration_s=10 + i,
                    charge=Decimal(i % 4) / 10)
        for i in range(23)
    ])


def walk(org, sort, size=5):
    seen, cursor, pages = [], "", 0
    while True:
        page = report.report_rows_page(organization=org, filters=filters(), match=None,
                                       sort=sort, after=cursor, size=size)
        seen.extend(r.pk for r in page.rows)
        pages += 1
        if not page.next_cursor:
            return seen, pages
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", ["-start", "start", "-charge", "charge", "user", "-duration"])
def test_keyset_pages_visit_every_call_once_in_order(org, many, sort):
    seen, pages = walk(org, sort)
    assert len(seen) == 23 and len(set(seen)) == 23 and pages == 5
    name = report.SORTS[sort.lstrip("-")]
    expected = sorted(many, key=lambda r: (getattr(r, name), r.pk),
                      reverse=sort.startswith("-"))
    assert seen == [r.pk for r in expected]


def test_previous_page_returns_the_page_before(org, many):
    first = report.report_rows_page(organization=org, filters=filters(), match=None, size=5)
    second = report.report_rows_page(organization=org, filters=filters(), match=None, size=5,
                                     after=first.next_cursor)
    back = report.report_rows_page(organization=org, filters=filters(), match=None, size=5,
                                   before=second.prev_cursor)
    assert [r.pk for r in back.rows] == [r.pk for r in first.rows]
    assert back.prev_cursor is None and back.next_cursor


def test_a_forged_cursor_is_ignored(org, many):
    page = report.report_rows_page(organization=org, filters=filters(), match=None, size=5,
                                   after="not-a-cursor")
    assert len(page.rows) == 5 and page.prev_cursor is None


def test_the_lean_person_day_table_holds_the_same_sums_as_the_full_rollup(org, calls):
    from usage.models import UsagePersonDay

    def sums(model):
        return {(r["day"], r["person_key"], r["upn"]): (r["c"], r["s"], r["m"])
                for r in model.objects.filter(organization=org)
                .values("day", "person_key", "upn")
                .annotate(c=Sum("calls"), s=Sum("duration_s"), m=Sum("charge"))}

    assert sums(UsagePersonDay) == sums(UsageRollup)
    rollups_rebuild(organization=org)
    assert sums(UsagePersonDay) == sums(UsageRollup)
    assert UsagePersonDay.objects.filter(organization=org).count() == 4
