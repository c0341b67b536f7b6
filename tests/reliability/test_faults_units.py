"""The defects the fault suite found, each pinned by a fast test that runs on SQLite too:
- a gateway time-out is retried under the same key, and giving up after time-outs asks
  the gateway what happened instead of failing a charge it made (no lost credit);
- the API's rate limit lets requests through when its cache (Redis) is unreachable."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from credits import tasks as credits_tasks
from credits.models import CreditAccount, LedgerEntry, RechargeAttempt, SimulatedGatewayCharge
from credits.payments.base import GatewayTimeout, get_gateway
from credits.payments.simulated import Faults
from credits.platform.services import Actor
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.recharges import auto_recharge_configure, auto_recharge_start
from credits.tasks import auto_recharge_check
from tests.factories import OrganizationFactory, funded_account, graph_row, saved_card
from usage.services import api_token_create

from .faults_support import (
    eager_celery,  # noqa: F401 - a fixture, used by pytestmark
    free_port,
)

pytestmark = pytest.mark.usefixtures("eager_celery")


@pytest.fixture
def below_trigger(db, monkeypatch):
    """An account at 40.00 under a trigger of 50 with its recharge attempt started (not
    yet charged)."""
    org = OrganizationFactory()
    funded_account(org, "60.00")
    auto_recharge_configure(organization=org, enabled=True, amount=Decimal(50),
                            trigger=Decimal(50), payment_method=saved_card(org),
                            actor="tests")
    monkeypatch.setattr(credits_tasks, "enqueue_auto_recharge_check", lambda org_id: None)
    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
        key="call:1", amount=Decimal("20.00"), description="", occurred_at=datetime.now(UTC))])
    return org, auto_recharge_start(organization_id=org.pk)


def test_a_charge_whose_answers_were_all_lost_is_credited_once_on_giving_up(
        below_trigger, settings):
    org, attempt = below_trigger
    # The card is charged, then every answer is lost (each try times out).
    get_gateway().charge(token=attempt.payment_method.gateway_token, amount=attempt.amount,
                         currency="USD", idempotency_key=str(attempt.pk))
    settings.SIMULATED_GATEWAY_FAULTS = "seed=1,timeout=1"
    with pytest.raises(GatewayTimeout):
        get_gateway().charge(token=attempt.payment_method.gateway_token,
                             amount=attempt.amount, currency="USD",
                             idempotency_key=str(attempt.pk))
    auto_recharge_check.apply(args=[org.pk])  # retried until it gives up
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert attempt.gateway_tries > 1
    assert LedgerEntry.objects.filter(organization=org, kind="auto_recharge").count() == 1
    assert SimulatedGatewayCharge.objects.get(idempotency_key=str(attempt.pk)).tries == 1
    assert CreditAccount.objects.get(organization=org).balance == Decimal("90.00")


def test_time_outs_before_any_charge_end_in_a_visible_failure_without_credit(
        below_trigger, settings, monkeypatch):
    org, attempt = below_trigger
    settings.SIMULATED_GATEWAY_FAULTS = "seed=1,timeout=1"
    # Every try times out before the card is charged (the seeded draw would pick before
    # or after at random per attempt id; the after case is the test above).
    monkeypatch.setattr(Faults, "draw", lambda self, key, try_number, replayed:
                        ("timeout", False))
    auto_recharge_check.apply(args=[org.pk])
    attempt.refresh_from_db()
    assert not SimulatedGatewayCharge.objects.filter(idempotency_key=str(attempt.pk),
                                                     status="succeeded").exists()
    assert (attempt.status, attempt.reason_code) == ("failed", "processing_error")
    assert attempt.reason
    assert attempt.gateway_tries > 1
    assert not LedgerEntry.objects.filter(organization=org, kind="auto_recharge").exists()
    assert CreditAccount.objects.get(organization=org).balance == Decimal("40.00")
    assert not RechargeAttempt.objects.filter(organization=org, status="pending").exists()


def test_the_api_takes_calls_when_the_rate_limit_cache_is_unreachable(client, settings, db):
    org = OrganizationFactory()
    _t, token = api_token_create(organization=org, name="switch", actor=Actor.system("t"))
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    response = client.post("/api/v1/pstn-calls", {"value": [graph_row("cache-down-1")]},
                           content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
