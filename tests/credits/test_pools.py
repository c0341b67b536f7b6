import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connections

from credits.models import DomainEvent, LicenseAssignment, MinutePool
from credits.products import ZONE_A, PoolKey
from credits.selectors.licenses import pool_status
from credits.services.licenses import (
    license_remove,
    pool_key_for,
    pool_take_minutes,
    pools_take_minutes,
)
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, PersonFactory, give_licenses

MAY = date(2026, 5, 1)


def at(day=10, hour=12, month=5):
    return datetime(2026, month, day, hour, tzinfo=UTC)


def backdate(person, when):
    # Licenses assigned "now" in the test are moved to before the calls of May 2026.
    LicenseAssignment.objects.filter(person=person).update(assigned_at=when)


@pytest.fixture
def us_domestic(org):
    people = [
        give_licenses(PersonFactory(organization=org, usage_location="US"), "MCOEV", "MCOPSTN1")
        for _ in range(2)
    ]
    for p in people:
        backdate(p, at(1, 0))
    return people


@pytest.mark.django_db
def test_us_domestic_pool_is_3000_minutes_per_license(org, us_domestic):
    key = PoolKey("domestic", "US", MAY)
    assert pool_take_minutes(organization=org, key=key, minutes=5999, at=at()) == 5999
    assert pool_take_minutes(organization=org, key=key, minutes=10, at=at()) == 1
    assert pool_take_minutes(organization=org, key=key, minutes=10, at=at()) == 0
    pool = MinutePool.objects.get(organization=org, kind="domestic", country="US")
    assert pool.used_minutes == 6000


@pytest.mark.django_db
def test_domestic_pool_outside_us_ca_pr_is_1200_and_international_600(org):
    person = give_licenses(
        PersonFactory(organization=org, usage_location="FR"), "MCOEV", "MCOPSTN2"
    )
    backdate(person, at(1, 0))
    assert pool_take_minutes(organization=org, key=PoolKey("domestic", "FR", MAY), minutes=5000,
                             at=at()) == 1200
    assert pool_take_minutes(organization=org, key=PoolKey("international", "FR", MAY),
                             minutes=5000, at=at()) == 600


@pytest.mark.django_db
def test_pools_are_per_usage_country(org, us_domestic):
    assert pool_take_minutes(organization=org, key=PoolKey("domestic", "GB", MAY), minutes=5,
                             at=at()) == 0


@pytest.mark.django_db
def test_domestic_plan_has_no_international_pool(org, us_domestic):
    assert pool_take_minutes(organization=org, key=PoolKey("international", "US", MAY),
                             minutes=5, at=at()) == 0


@pytest.mark.django_db
def test_pay_as_you_go_brings_no_minutes(org):
    person = give_licenses(PersonFactory(organization=org), "MCOEV", "MCOPSTN_PAYG_1")
    backdate(person, at(1, 0))
    assert pool_take_minutes(organization=org, key=PoolKey("domestic", "US", MAY), minutes=5,
                             at=at()) == 0


@pytest.mark.django_db
def test_conference_pool_is_tenant_wide_60_per_license(org):
    for country in ("US", "FR", "GB"):
        p = give_licenses(PersonFactory(organization=org, usage_location=country), "MCOMEETADD")
        backdate(p, at(1, 0))
    key = pool_key_for(kind="conference", country="FR", at=at())
    assert key == PoolKey("conference", "", MAY)
    assert pool_take_minutes(organization=org, key=key, minutes=500, at=at()) == 180


def test_zone_a_is_exposed():
    assert {"US", "FR", "GB", "CA", "PR", "JP"} <= ZONE_A
    assert "EG" not in ZONE_A and len(ZONE_A) == 44


@pytest.mark.django_db
def test_pools_reset_on_the_first_of_the_month_utc(org, us_domestic):
    may = PoolKey("domestic", "US", MAY)
    assert pool_take_minutes(organization=org, key=may, minutes=6000, at=at(31, 23)) == 6000
    june_at = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    june = pool_key_for(kind="domestic", country="US", at=june_at)
    assert june.month == date(2026, 6, 1)
    assert pool_take_minutes(organization=org, key=june, minutes=100, at=june_at) == 100
    # 1 June 01:00 in Paris is still 31 May in UTC.
    from zoneinfo import ZoneInfo
    paris = datetime(2026, 6, 1, 1, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert pool_key_for(kind="domestic", country="US", at=paris).month == MAY


@pytest.mark.django_db
def test_pool_is_sized_by_licenses_assigned_at_the_time_of_use(org, us_domestic):
    key = PoolKey("domestic", "US", MAY)
    # A license added mid-month does not size calls before it was assigned.
    late = give_licenses(PersonFactory(organization=org), "MCOEV", "MCOPSTN1")
    backdate(late, at(20))
    assert pool_take_minutes(organization=org, key=key, minutes=9000, at=at(15)) == 6000
    assert pool_take_minutes(organization=org, key=key, minutes=9000, at=at(21)) == 3000


@pytest.mark.django_db
def test_removed_license_shrinks_the_pool_for_later_calls(org, us_domestic):
    key = PoolKey("domestic", "US", MAY)
    license_remove(person=us_domestic[0], sku="MCOPSTN1", actor="x")
    removed_at = LicenseAssignment.objects.get(person=us_domestic[0], sku="MCOPSTN1").removed_at
    LicenseAssignment.objects.filter(person=us_domestic[0], sku="MCOPSTN1").update(
        removed_at=at(15)
    )
    assert removed_at is not None
    assert pool_take_minutes(organization=org, key=key, minutes=4000, at=at(16)) == 3000
    # A call that started before the removal still sees the bigger pool.
    assert pool_take_minutes(organization=org, key=key, minutes=4000, at=at(14)) == 3000


@pytest.mark.django_db
def test_batch_gives_the_same_result_as_one_by_one(org, us_domestic):
    key = PoolKey("domestic", "US", MAY)
    conf = PoolKey("conference", "", MAY)
    requests = [(key, 2000, at(2)), (conf, 10, at(2)), (key, 3000, at(3)), (key, 2000, at(4)),
                (key, 5, at(5))]
    assert pools_take_minutes(organization=org, requests=requests) == [2000, 0, 3000, 1000, 0]


@pytest.mark.django_db
def test_pool_alerts_once_per_pool_per_month(org, us_domestic):
    key = PoolKey("domestic", "US", MAY)
    pool_take_minutes(organization=org, key=key, minutes=4700, at=at())
    assert not DomainEvent.objects.filter(name__startswith="pool_").exists()
    pool_take_minutes(organization=org, key=key, minutes=100, at=at())  # 4800 = 80 %
    pool_take_minutes(organization=org, key=key, minutes=100, at=at())
    events = list(DomainEvent.objects.filter(name="pool_80"))
    assert len(events) == 1
    assert events[0].payload == {
        "pool": "Domestic calling US", "kind": "domestic", "country": "US", "month": "2026-05",
        "used": 4800, "total": 6000, "left": 1200,
    }
    pool_take_minutes(organization=org, key=key, minutes=5000, at=at())
    pool_take_minutes(organization=org, key=key, minutes=5, at=at())
    assert DomainEvent.objects.filter(name="pool_100").count() == 1
    assert DomainEvent.objects.get(name="pool_100").payload["left"] == 0


@pytest.mark.django_db
def test_no_alert_for_a_pool_without_licenses(org):
    pool_take_minutes(organization=org, key=PoolKey("domestic", "US", MAY), minutes=5, at=at())
    assert not DomainEvent.objects.exists()


@pytest.mark.django_db
def test_pool_status_adds_up_after_some_calls(org, us_domestic):
    fr = give_licenses(PersonFactory(organization=org, usage_location="FR"), "MCOEV", "MCOPSTN2",
                       "MCOMEETADD")
    backdate(fr, at(1, 0))
    now_month = pool_key_for(kind="domestic", country="US", at=datetime.now(UTC)).month
    now = datetime.now(UTC) - timedelta(seconds=1)
    pools_take_minutes(
        organization=org,
        requests=[
            (PoolKey("domestic", "US", now_month), 100, now),
            (PoolKey("domestic", "US", now_month), 50, now),
            (PoolKey("international", "FR", now_month), 20, now),
            (PoolKey("conference", "", now_month), 7, now),
        ],
    )
    rows = {(r["kind"], r["country"]): r for r in pool_status(organization=org, month=now_month)}
    assert (rows[("domestic", "US")]["total"], rows[("domestic", "US")]["used"],
            rows[("domestic", "US")]["available"]) == (6000, 150, 5850)
    assert rows[("domestic", "FR")]["total"] == 1200 and rows[("domestic", "FR")]["used"] == 0
    assert rows[("international", "FR")]["used"] == 20
    assert rows[("conference", "")]["total"] == 60 and rows[("conference", "")]["used"] == 7
    assert rows[("domestic", "US")]["capability"] == "MCOPSTN1"
    assert rows[("domestic", "FR")]["capability"] == "MCOPSTN2"


@pytest.mark.django_db
def test_pool_rows_refuse_negative_usage(org):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        MinutePool.objects.create(organization=org, kind="domestic", country="US", month=MAY,
                                  used_minutes=-1)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_takes_never_exceed_the_pool():
    org = OrganizationFactory(slug="race-pools")
    person = give_licenses(PersonFactory(organization=org, usage_location="FR"), "MCOEV",
                           "MCOPSTN1")
    backdate(person, at(1, 0))
    key = PoolKey("domestic", "FR", MAY)
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    given = []

    def take():
        try:
            barrier.wait()
            for _ in range(5):
                given.append(pool_take_minutes(organization=org, key=key, minutes=37, at=at()))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(given) == 1200  # 40 x 37 = 1480 asked
    assert MinutePool.objects.get(organization=org, kind="domestic").used_minutes == 1200
    assert DomainEvent.objects.filter(organization=org, name="pool_100").count() == 1
