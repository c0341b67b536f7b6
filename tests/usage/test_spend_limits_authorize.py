"""Call authorization and ingestion under monthly spend limits: the worked examples, with
the figures written out. Deck: the test deck plus Spain at 0.05/min (60/60, no fee)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from credits.models import CreditAccount, DomainEvent, SpendCounter
from credits.platform.services import Actor
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.licenses import pool_key_for, pools_take_minutes
from credits.services.spend_limits import person_spend_limit_set, spend_limit_set
from tests.factories import TEST_DECK_CSV, PersonFactory, graph_row, load_test_deck
from usage.authorize import call_authorize_by_token
from usage.services import api_token_create, calls_ingest

from .conftest import fund, licensed

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
SPAIN = "+34912345678"
DECK = TEST_DECK_CSV + "outbound,34,Spain,ES,landline,0.05000,0.00,60,60,USD,2026-01-01\n"
_n = iter(range(10**6))
_tokens: dict[int, str] = {}  # organization id -> its API token (per test: ids come again)


@pytest.fixture(autouse=True)
def _fresh_tokens():
    _tokens.clear()


@pytest.fixture
def setup(org):
    load_test_deck(org, DECK)
    fund(org, 500)
    payg = PersonFactory(organization=org, display_name="Pat Payg", upn="pat@contoso.com",
                         usage_location="US")
    return licensed(payg, "MCOEV", "MCOPSTN1", "MCOPSTNC")


def spent(org, amount, person=None, at=NOW):
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key=f"call:s{next(_n)}", amount=Decimal(amount), description="earlier call",
        occurred_at=at, person_id=person.pk if person else None)])


def authorize(org, person, callee=SPAIN, call_type="user_out", now=NOW):
    """The API's own path: the token and every fact in one read."""
    if org.pk not in _tokens:
        _tokens[org.pk] = api_token_create(organization=org, name="pbx",
                                           actor=Actor.system("test"))[1]
    token, d = call_authorize_by_token(raw_token=_tokens[org.pk], upn=person.upn,
                                       callee=callee, call_type=call_type, now=now)
    assert token is not None and token.organization == org
    return d.allowed, d.reason, d.charged_to, d.max_duration_seconds


def test_example_1_org_limit_caps_max_duration(org, setup):
    """Limit 100.00, 79.50 spent: 20.50 left at 0.05/min = 410 min = 24,600 s (the balance
    of 420.50 would allow 8,410 min)."""
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    spent(org, "79.50")
    assert CreditAccount.objects.get(organization=org).balance == Decimal("420.50")
    assert authorize(org, setup) == (True, None, "credits", 24600)


def test_example_2_the_smaller_limit_decides(org, setup):
    """Org: 100.00 with 79.50 spent (20.50 left). Pat: 25.00 with 20.00 spent (5.00 left):
    5.00 / 0.05 = 100 min = 6,000 s. Pat's 20.00 are in the org's 79.50 too."""
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    person_spend_limit_set(person=setup, monthly_limit="25", actor="test")
    spent(org, "59.50")
    spent(org, "20.00", person=setup)
    assert authorize(org, setup) == (True, None, "credits", 6000)
    # France mobile at 0.114/min: 5.00 buys 43 min (4.902 -> 4.90); 44 min cost 5.02.
    assert authorize(org, setup, callee="+33612345678") == (True, None, "credits", 2580)


def test_example_3_what_is_left_must_pay_the_first_block(org, setup):
    """Pat's limit 10.00 with 9.10 spent leaves 0.90; a premium call's first minute costs
    0.15 + 0.80 = 0.95: refused with person_limit_reached. At 9.05 spent (0.95 left):
    exactly one minute, 60 s."""
    person_spend_limit_set(person=setup, monthly_limit="10", actor="test")
    spent(org, "9.10", person=setup)
    premium = "+33951234567"
    assert authorize(org, setup, callee=premium) == (False, "person_limit_reached", "credits",
                                                     None)
    # Spain at 0.05/min still fits: 0.90 / 0.05 = 18 min.
    assert authorize(org, setup) == (True, None, "credits", 1080)
    person_spend_limit_set(person=setup, monthly_limit="10.05", actor="test")
    assert authorize(org, setup, callee=premium) == (True, None, "credits", 60)


def test_example_4_past_the_limit_credits_calls_are_refused_pool_calls_pass(org, setup):
    """Org limit 100.00 with 100.00 spent: Spain (credits) is refused with
    spend_limit_reached; a domestic call of the plan's pool passes for the pool's 3,000
    minutes only (180,000 s), with no credits on top."""
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    spent(org, "100.00")
    assert authorize(org, setup) == (False, "spend_limit_reached", "credits", None)
    assert authorize(org, setup, callee="+12125550100") == (True, None, "plan_pool", 180000)
    # A new month starts from zero.
    december = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert authorize(org, setup, now=december)[:2] == (True, None)


def test_example_5_pool_then_credits_within_the_limit(org, setup):
    """The pool has 10 minutes left; the org limit 100.00 has 1.90 left. US at 0.019/min:
    1.90 buys 100 min (a 101st costs 1.92). maxDurationSeconds = 10 x 60 + 100 x 60 =
    6,600."""
    spend_limit_set(organization=org, monthly_limit="100", actor="test")
    spent(org, "98.10")
    key = pool_key_for(kind="domestic", country="US", at=NOW)
    assert pools_take_minutes(organization=org, requests=[(key, 2990, NOW)]) == [2990]
    assert authorize(org, setup, callee="+12125550100") == (True, None, "plan_pool", 6600)


def test_example_6_the_person_limit_is_checked_after_the_org_limit(org, setup):
    """Both reached: the organization's reason is given, as it stops everyone."""
    spend_limit_set(organization=org, monthly_limit="50", actor="test")
    person_spend_limit_set(person=setup, monthly_limit="10", actor="test")
    spent(org, "50.00", person=setup)
    assert authorize(org, setup)[:2] == (False, "spend_limit_reached")
    spend_limit_set(organization=org, monthly_limit="off", actor="test")
    assert authorize(org, setup)[:2] == (False, "person_limit_reached")


def test_example_7_ingestion_counts_settles_in_full_and_tells_once(
        org, setup, django_capture_on_commit_callbacks):
    """Limit 20.00 for Pat. A 300-minute call to Spain (15.00) makes 75 %: nothing told. A
    120-minute call (6.00) makes 21.00 = 105 %: both 80 % and 100 % are told once, and the
    call settles in full past the limit (the balance drops by 6.00, not 5.00)."""
    person_spend_limit_set(person=setup, monthly_limit="20", actor="test")
    start = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        calls_ingest(organization=org, source="api", rows=[graph_row(
            "lim-1", userPrincipalName=setup.upn, calleeNumber=SPAIN, duration=300 * 60,
            startDateTime=start.isoformat().replace("+00:00", "Z"))])
        assert not DomainEvent.objects.filter(name__startswith="person_limit").exists()
        balance = CreditAccount.objects.get(organization=org).balance
        later = start + timedelta(hours=6)
        calls_ingest(organization=org, source="api", rows=[graph_row(
            "lim-2", userPrincipalName=setup.upn, calleeNumber=SPAIN, duration=120 * 60,
            startDateTime=later.isoformat().replace("+00:00", "Z"))])
    assert CreditAccount.objects.get(organization=org).balance == balance - Decimal("6.00")
    assert SpendCounter.objects.get(organization=org, person_key=setup.pk).spent == \
        Decimal("21.00")
    names = sorted(DomainEvent.objects.filter(name__startswith="person_limit")
                   .values_list("name", flat=True))
    assert names == ["person_limit_100", "person_limit_80"]
    assert authorize(org, setup, now=later)[:2] == (False, "person_limit_reached")


def test_authorize_api_answers_the_new_reason(org, setup, api):
    spend_limit_set(organization=org, monthly_limit="1", actor="test")
    spent(org, "1.00", at=timezone.now())
    out = api.post("/calls/authorize", {"userPrincipalName": setup.upn,
                                        "calleeNumber": SPAIN, "callType": "user_out"}).json()
    assert out == {"allowed": False, "reason": "spend_limit_reached", "chargedTo": "credits",
                   "maxDurationSeconds": None}
