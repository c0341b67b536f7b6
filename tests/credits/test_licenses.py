import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from credits.models import AuditEntry, LicenseAssignment, Subscription
from credits.selectors.licenses import licenses_at, person_license_warnings, seat_summary
from credits.services.licenses import (
    LicenseError,
    license_assign,
    license_remove,
    licenses_set,
    person_set_usage_location,
    subscription_ensure,
    subscription_set_seats,
)
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, PersonFactory, SubscriptionFactory, give_licenses


@pytest.mark.django_db
def test_subscription_ensure_is_idempotent_and_credits_are_unlimited(org):
    first = subscription_ensure(organization=org, sku="MCOPSTNC", actor="billing")
    again = subscription_ensure(organization=org, sku="mcopstnc", actor="billing")
    assert first.pk == again.pk
    assert first.seats is None and first.unlimited
    assert Subscription.objects.filter(organization=org).count() == 1
    assert AuditEntry.objects.filter(organization=org, action="subscription.create").count() == 1


@pytest.mark.django_db
def test_seat_product_subscription_starts_with_zero_seats(org):
    sub = subscription_ensure(organization=org, sku="MCOEV", actor="x")
    assert sub.seats == 0


@pytest.mark.django_db
def test_unknown_sku_is_refused(org):
    with pytest.raises(LicenseError) as err:
        subscription_ensure(organization=org, sku="NOPE", actor="x")
    assert err.value.code == "unknown_product"


@pytest.mark.django_db
def test_credits_license_never_runs_out(org):
    people = PersonFactory.create_batch(30, organization=org)
    for person in people:
        license_assign(person=person, sku="MCOPSTNC", actor="x")
    assert LicenseAssignment.objects.filter(sku="MCOPSTNC", removed_at__isnull=True).count() == 30


@pytest.mark.django_db
def test_assignment_beyond_the_seats_is_refused(org):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=1)
    a, b = PersonFactory.create_batch(2, organization=org)
    license_assign(person=a, sku="MCOEV", actor="x")
    with pytest.raises(LicenseError) as err:
        license_assign(person=b, sku="MCOEV", actor="x")
    assert err.value.code == "no_seat"
    assert LicenseAssignment.objects.filter(sku="MCOEV").count() == 1


@pytest.mark.django_db
def test_assigning_without_subscription_is_refused(org):
    person = PersonFactory(organization=org)
    with pytest.raises(LicenseError) as err:
        license_assign(person=person, sku="MCOMEETADD", actor="x")
    assert err.value.code == "no_subscription"


@pytest.mark.django_db
def test_calling_plan_needs_teams_phone(org):
    SubscriptionFactory(organization=org, sku="MCOPSTN1", seats=5)
    person = PersonFactory(organization=org)
    with pytest.raises(LicenseError) as err:
        license_assign(person=person, sku="MCOPSTN1", actor="x")
    assert err.value.code == "missing_teams_phone"


@pytest.mark.django_db
def test_calling_plan_needs_a_usage_location(org):
    person = PersonFactory(organization=org, usage_location="")
    give_licenses(person, "MCOEV")
    SubscriptionFactory(organization=org, sku="MCOPSTN1", seats=5)
    with pytest.raises(LicenseError) as err:
        license_assign(person=person, sku="MCOPSTN1", actor="x")
    assert err.value.code == "no_usage_location"


@pytest.mark.django_db
def test_one_calling_plan_at_a_time(org):
    person = give_licenses(PersonFactory(organization=org), "MCOEV", "MCOPSTN1")
    SubscriptionFactory(organization=org, sku="MCOPSTN2", seats=5)
    with pytest.raises(LicenseError) as err:
        license_assign(person=person, sku="MCOPSTN2", actor="x")
    assert err.value.code == "other_calling_plan"


@pytest.mark.django_db
def test_teams_phone_cannot_be_removed_under_a_calling_plan(org):
    person = give_licenses(PersonFactory(organization=org), "MCOEV", "MCOPSTN_PAYG_1")
    with pytest.raises(LicenseError) as err:
        license_remove(person=person, sku="MCOEV", actor="x")
    assert err.value.code == "plan_needs_phone"


@pytest.mark.django_db
def test_licenses_set_switches_plans_in_dependency_order(org):
    person = give_licenses(PersonFactory(organization=org), "MCOEV", "MCOPSTN1")
    SubscriptionFactory(organization=org, sku="MCOPSTN2", seats=5)
    added, removed = licenses_set(person=person, skus=["MCOEV", "MCOPSTN2"], actor="x")
    assert added == ["MCOPSTN2"] and removed == ["MCOPSTN1"]
    licenses_set(person=person, skus=[], actor="x")
    assert not LicenseAssignment.objects.filter(person=person, removed_at__isnull=True).exists()


@pytest.mark.django_db
def test_every_assignment_change_writes_an_audit_row(org):
    person = PersonFactory(organization=org)
    license_assign(person=person, sku="MCOPSTNC", actor="x")
    license_remove(person=person, sku="MCOPSTNC", actor="x")
    actions = list(
        AuditEntry.objects.filter(organization=org, target_type="person", target_id=str(person.pk))
        .order_by("id")
        .values_list("action", "changes")
    )
    assert actions == [
        ("license.assign", {"sku": "MCOPSTNC"}),
        ("license.remove", {"sku": "MCOPSTNC"}),
    ]


@pytest.mark.django_db
def test_removal_affects_only_calls_that_start_afterwards(org):
    person = PersonFactory(organization=org)
    license_assign(person=person, sku="MCOPSTNC", actor="x")
    during = timezone.now()
    license_remove(person=person, sku="MCOPSTNC", actor="x")
    after = timezone.now()
    assert licenses_at(organization=org, at=during)[person.pk] == frozenset({"MCOPSTNC"})
    assert person.pk not in licenses_at(organization=org, at=after)
    # Re-assigning opens a new interval; history is kept.
    license_assign(person=person, sku="MCOPSTNC", actor="x")
    assert LicenseAssignment.objects.filter(person=person).count() == 2


@pytest.mark.django_db
def test_licenses_at_is_scoped_by_organization(org, other_org):
    mine = PersonFactory(organization=org)
    theirs = PersonFactory(organization=other_org)
    license_assign(person=mine, sku="MCOPSTNC", actor="x")
    license_assign(person=theirs, sku="MCOPSTNC", actor="x")
    assert set(licenses_at(organization=org, at=timezone.now())) == {mine.pk}


@pytest.mark.django_db
def test_seats_cannot_go_below_assigned(org):
    sub = SubscriptionFactory(organization=org, sku="MCOEV", seats=3)
    for person in PersonFactory.create_batch(2, organization=org):
        license_assign(person=person, sku="MCOEV", actor="x")
    with pytest.raises(LicenseError) as err:
        subscription_set_seats(subscription=sub, seats=1, actor="x")
    assert err.value.code == "below_assigned"
    subscription_set_seats(subscription=sub, seats=2, actor="x")
    sub.refresh_from_db()
    assert sub.seats == 2
    assert AuditEntry.objects.filter(action="subscription.seats").count() == 1


@pytest.mark.django_db
def test_credits_without_plan_or_conferencing_is_warned():
    assert "credits_unused" in person_license_warnings(skus={"MCOPSTNC", "MCOEV"})
    assert "credits_unused" not in person_license_warnings(skus={"MCOPSTNC", "MCOMEETADD"})
    assert "credits_unused" not in person_license_warnings(skus={"MCOPSTNC", "MCOPSTN_PAYG_1"})


@pytest.mark.django_db
def test_usage_location_cannot_change_under_a_calling_plan(org):
    person = give_licenses(PersonFactory(organization=org, usage_location="FR"), "MCOEV",
                           "MCOPSTN1")
    with pytest.raises(LicenseError) as err:
        person_set_usage_location(person=person, country="GB", actor="x")
    assert err.value.code == "plan_assigned"


@pytest.mark.django_db
def test_seat_summary_counts_assigned_and_available(org):
    SubscriptionFactory(organization=org, sku="MCOEV", seats=20)
    for person in PersonFactory.create_batch(3, organization=org):
        license_assign(person=person, sku="MCOEV", actor="x")
    row = next(r for r in seat_summary(organization=org) if r["sku"] == "MCOEV")
    assert (row["assigned"], row["seats"], row["available"]) == (3, 20, 17)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_assigning_the_last_seat_at_once_never_oversubscribe():
    org = OrganizationFactory(slug="race-seats")
    SubscriptionFactory(organization=org, sku="MCOEV", seats=1)
    people = PersonFactory.create_batch(8, organization=org)
    barrier = threading.Barrier(len(people))
    outcomes = []

    def assign(person):
        try:
            barrier.wait()
            license_assign(person=person, sku="MCOEV", actor="race")
            outcomes.append("ok")
        except LicenseError as err:
            outcomes.append(err.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1
    assert outcomes.count("no_seat") == len(people) - 1
    assert LicenseAssignment.objects.filter(organization=org, removed_at__isnull=True).count() == 1
    assert connection.vendor == "postgresql"
