from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import call_record
from usage.models import CallRecord
from usage.rollups import rollups_add_calls


@pytest.mark.django_db
def test_usage_card_shows_this_months_minutes_and_spend(admin_client, admin_person):
    org = admin_person.organization
    now = timezone.now()
    record = call_record(org, start=now, duration_s=600, charge=Decimal("1.25"))
    CallRecord.objects.bulk_create([record])
    rollups_add_calls(organization=org, records=[record])
    page = admin_client.get("/").content.decode()
    assert "Usage this month" in page
    assert "10 min" in page
    assert "$1.25" in page


@pytest.mark.django_db
def test_usage_card_says_when_there_are_no_calls(admin_client):
    assert "No calls this month yet." in admin_client.get("/").content.decode()
