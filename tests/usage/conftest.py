import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command

from credits.models import LicenseAssignment
from credits.platform.services import Actor
from credits.services.ledger import credits_adjust
from tests.factories import PersonFactory, give_licenses, load_test_deck
from usage.services import api_token_create

# Calls of the tests start in November 2026; licenses are backdated to before that.
LICENSED_SINCE = datetime(2026, 10, 1, tzinfo=UTC)


def licensed(person, *skus):
    give_licenses(person, *skus)
    LicenseAssignment.objects.filter(person=person).update(assigned_at=LICENSED_SINCE)
    return person


def fund(organization, amount):
    credits_adjust(organization=organization, amount=Decimal(amount), reason="test funds",
                   actor=Actor.system("test"), key=f"test-fund-{amount}-{datetime.now(UTC)}")


def run_command(*args):
    """(exit code, stdout, stderr) of a management command."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def deck(org):
    load_test_deck(org)
    return org


@pytest.fixture
def token(org):
    return api_token_create(organization=org, name="switch", actor=Actor.system("test"))[1]


@pytest.fixture
def api(client, token):
    """A test client speaking to the API with the organization's bearer token."""

    class Api:
        def post(self, path, body, **extra):
            return client.post(f"/api/v1{path}", body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}", **extra)

        def get(self, path, params=None):
            return client.get(f"/api/v1{path}", params or {},
                              HTTP_AUTHORIZATION=f"Bearer {token}")

    return Api()


@pytest.fixture
def us_user(org):
    p = PersonFactory(organization=org, display_name="Richard Malk",
                      upn="richard.malk@contoso.com", usage_location="US")
    return licensed(p, "MCOEV", "MCOPSTN1", "MCOPSTNC")
