"""Reliability of the money paths on PostgreSQL: racing charges and recharges, a worker
dying mid-recharge, and the recharge path through a real Celery worker on Redis."""

import random
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from credits.models import CreditAccount, LedgerEntry, RechargeAttempt, SimulatedGatewayCharge
from credits.services import recharges
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.recharges import auto_recharge_configure
from credits.tasks import auto_recharge_check, auto_recharge_sweep
from tests.concurrency import run_threads
from tests.conftest import requires_postgres, requires_redis
from tests.factories import OrganizationFactory, funded_account, saved_card


def setup_org(balance, amount, trigger):
    org = OrganizationFactory()
    funded_account(org, balance)
    card = saved_card(org)
    auto_recharge_configure(organization=org, enabled=True, amount=Decimal(amount),
                            trigger=Decimal(trigger), payment_method=card,
                            actor="tests")
    return org


def charges(keys, amount):
    now = datetime.now(UTC)
    return [UsageCharge(key=k, amount=Decimal(amount), description="", occurred_at=now)
            for k in keys]


def assert_ledger_consistent(org):
    total = LedgerEntry.objects.filter(organization=org).aggregate(s=Sum("amount"))["s"]
    assert CreditAccount.objects.get(organization=org).balance == total


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_charges_and_recharge_checks_recharge_exactly_once():
    org = setup_org("100.00", 1000, 50)
    keys = [f"call:{i}" for i in range(60)]

    def charger(seed):
        def run():
            mine = keys[:]
            random.Random(seed).shuffle(mine)
            for i in range(0, len(mine), 5):
                credits_charge_usage_batch(organization=org, charges=charges(mine[i:i + 5],
                                                                             "1.00"))
        return run

    def checker():
        for _ in range(20):
            auto_recharge_check.apply(args=[org.pk])
            auto_recharge_sweep()

    run_threads([charger(s) for s in range(8)] + [checker, checker])
    assert LedgerEntry.objects.filter(organization=org, kind="usage").count() == 60
    recharges = LedgerEntry.objects.filter(organization=org, kind="auto_recharge")
    assert [e.amount for e in recharges] == [Decimal("1000.00")]
    assert SimulatedGatewayCharge.objects.count() == 1
    assert CreditAccount.objects.get(organization=org).balance == Decimal("1040.00")
    assert_ledger_consistent(org)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_charges_across_many_crossings_keep_the_ledger_exact():
    org = setup_org("100.00", 50, 50)
    keys = [f"call:{i}" for i in range(30)]

    def charger(seed):
        def run():
            mine = keys[:]
            random.Random(seed).shuffle(mine)
            for i in range(0, len(mine), 3):
                credits_charge_usage_batch(organization=org, charges=charges(mine[i:i + 3],
                                                                             "5.00"))
        return run

    run_threads([charger(s) for s in range(6)] + [auto_recharge_sweep] * 2)
    auto_recharge_sweep()  # whatever the race left for the beat
    assert LedgerEntry.objects.filter(organization=org, kind="usage").count() == 30
    recharges = list(LedgerEntry.objects.filter(organization=org, kind="auto_recharge"))
    attempts = RechargeAttempt.objects.filter(organization=org, status="succeeded")
    charged = SimulatedGatewayCharge.objects.filter(status="succeeded")
    assert len(recharges) == attempts.count() == charged.count() >= 1
    assert sorted(str(a.pk) for a in attempts) == sorted(c.idempotency_key for c in charged)
    assert all(e.amount % 50 == 0 for e in recharges)
    balance = CreditAccount.objects.get(organization=org).balance
    # Each recharge lifts the balance into [trigger, trigger + amount); usage only lowers it.
    assert Decimal(50) <= balance < Decimal(100)
    assert sum(e.amount for e in recharges) == balance - Decimal("100.00") + Decimal("150.00")
    assert_ledger_consistent(org)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_worker_dying_after_the_charge_is_finished_by_the_redelivery(monkeypatch):
    org = setup_org("60.00", 50, 50)
    real_finish = recharges.recharge_attempt_finish
    calls = {"n": 0}

    def dies_the_first_time(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise SystemExit("worker killed between the gateway charge and the ledger write")
        return real_finish(**kwargs)

    monkeypatch.setattr(recharges, "recharge_attempt_finish", dies_the_first_time)
    with pytest.raises(SystemExit):
        credits_charge_usage_batch(organization=org, charges=charges(["c1"], "20.00"))
    attempt = RechargeAttempt.objects.get(organization=org)
    assert attempt.status == "pending"
    assert SimulatedGatewayCharge.objects.get().status == "succeeded"  # the card was charged
    assert not LedgerEntry.objects.filter(kind="auto_recharge").exists()
    # The redelivered message runs the same task again; then a second, late redelivery.
    auto_recharge_check.apply(args=[org.pk])
    auto_recharge_check.apply(args=[org.pk])
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    assert LedgerEntry.objects.filter(kind="auto_recharge").count() == 1
    gateway = SimulatedGatewayCharge.objects.get()
    assert gateway.tries == 1 and gateway.idempotency_key == str(attempt.pk)
    assert CreditAccount.objects.get(organization=org).balance == Decimal("90.00")
    assert_ledger_consistent(org)


@pytest.fixture
def real_worker(settings):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    # Read before the settings change: app.conf reads the Django setting through, so
    # reading it after would "restore" False and leave every later test non-eager.
    was_eager = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    app.control.purge()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING",
                          shutdown_timeout=10):
            yield app
    finally:
        app.conf.task_always_eager = was_eager


@requires_redis
@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_redis_recharges_after_usage(real_worker):
    org = setup_org("60.00", 50, 50)
    credits_charge_usage_batch(organization=org, charges=charges(["c1"], "20.00"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if LedgerEntry.objects.filter(organization=org, kind="auto_recharge").exists():
            break
        time.sleep(0.05)
    entry = LedgerEntry.objects.get(organization=org, kind="auto_recharge")
    assert entry.amount == Decimal("50.00")
    assert CreditAccount.objects.get(organization=org).balance == Decimal("90.00")
    assert SimulatedGatewayCharge.objects.count() == 1
    assert_ledger_consistent(org)
