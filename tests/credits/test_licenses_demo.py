import io

import pytest
from django.utils import timezone

from credits import demo, demo_licenses
from credits.models import LicenseAssignment
from credits.selectors.licenses import licenses_at


@pytest.mark.django_db
def test_demo_licenses_mix_plans_countries_and_credits_and_is_idempotent():
    out = io.StringIO()
    org = demo.seed(out)
    demo_licenses.seed(org, out)
    first = LicenseAssignment.objects.filter(organization=org).count()
    demo_licenses.seed(org, out)
    assert LicenseAssignment.objects.filter(organization=org).count() == first
    active = LicenseAssignment.objects.filter(organization=org, removed_at__isnull=True)
    assert {"MCOPSTN1", "MCOPSTN2", "MCOPSTN_PAYG_1", "MCOMEETADD", "MCOPSTNC"} <= set(
        active.values_list("sku", flat=True))
    planned_countries = set(active.filter(sku__startswith="MCOPSTN").exclude(sku="MCOPSTNC")
                            .values_list("usage_location", flat=True))
    assert {"US", "FR", "GB", "CA"} <= planned_countries
    with_credits = set(active.filter(sku="MCOPSTNC").values_list("person_id", flat=True))
    everyone = set(org.people.values_list("pk", flat=True))
    assert with_credits and everyone - with_credits
    # In force for the 90 days of demo call history.
    ninety_days_ago = timezone.now() - timezone.timedelta(days=90)
    assert len(licenses_at(organization=org, at=ninety_days_ago)) >= 10
