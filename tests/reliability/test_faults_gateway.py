"""Fault: the payment gateway times out (before or after charging), errors and declines at
random (its seeded fault mode, SIMULATED_GATEWAY_FAULTS) during a burst of automatic
recharges and purchases from many threads. No double charge, no lost credit, every
attempt visible with its outcome."""

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from credits.models import (
    CreditAccount,
    DomainEvent,
    Invoice,
    LedgerEntry,
    RechargeAttempt,
    SimulatedGatewayCharge,
)
from credits.platform.services import Actor
from credits.selectors.billing import stale_recharge_attempt_ids
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.purchases import credits_purchase
from credits.services.recharges import auto_recharge_configure
from credits.tasks import auto_recharge_sweep, process_recharge_attempt
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, funded_account, saved_card

from .faults_support import eager_celery  # noqa: F401 - a fixture, used by pytestmark

ORGS = 6
ROUNDS = 8
PURCHASES = 3
RECHARGE_KINDS = ("purchase", "auto_recharge")

pytestmark = pytest.mark.usefixtures("eager_celery")


def _run_threads(targets, timeout=120):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
                errors.append(repr(exc))
            finally:
                connection.close()
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    deadline = time.monotonic() + timeout
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    assert not [t for t in threads if t.is_alive()], "threads still running: a hang"
    return errors


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_gateway_faults_during_a_burst_of_recharges_lose_and_double_nothing(settings,
                                                                            reliability):
    survived = False
    try:
        settings.SIMULATED_GATEWAY_FAULTS = "seed=8,timeout=0.3,error=0.1,decline=0.1"
        orgs, cards = [], {}
        for _ in range(ORGS):
            org = OrganizationFactory()
            funded_account(org, "60.00")
            cards[org.pk] = saved_card(org)
            auto_recharge_configure(organization=org, enabled=True,
                                    amount=Decimal(50), trigger=Decimal(50),
                                    payment_method=cards[org.pk], actor="tests")
            orgs.append(org)

        def charger(org):
            def run():
                for r in range(ROUNDS):
                    # Each round takes the balance below the trigger: the check after
                    # commit recharges (eager Celery, as a worker would, retries included).
                    credits_charge_usage_batch(organization=org, charges=[UsageCharge(
                        key=f"call:{org.pk}:{r}:{i}", amount=Decimal("10.00"),
                        description="", occurred_at=datetime.now(UTC)) for i in range(3)])
            return run

        purchase_results = []

        def purchaser(org, keys):
            def run():
                for key in keys:
                    attempt = credits_purchase(
                        organization=org, amount=Decimal(100), payment_method=cards[org.pk],
                        actor=Actor.system("tests"), request_key=key)
                    purchase_results.append((key, attempt.pk, attempt.status))
            return run

        def beat():
            for _ in range(10):
                auto_recharge_sweep()
                time.sleep(0.2)

        targets = [beat]
        for org in orgs:
            keys = [f"buy-{org.pk}-{n}" for n in range(PURCHASES)]
            targets.append(charger(org))
            targets.append(purchaser(org, keys))
            # The same order submitted twice at once (a double click during a time-out).
            targets.append(purchaser(org, keys[:1]))
        started = time.monotonic()
        errors = _run_threads(targets)
        burst_s = time.monotonic() - started
        assert errors == []

        # The beat, later (past every back-off): stale pending attempts, among them the
        # purchases a fault left pending in the request, and due accounts are finished.
        later = datetime.now(UTC) + timedelta(minutes=10)
        for attempt_id in stale_recharge_attempt_ids(older_than_seconds=0, now=later):
            process_recharge_attempt.apply(args=[str(attempt_id)])
        auto_recharge_sweep()

        attempts = RechargeAttempt.objects.filter(organization__in=orgs)
        # Every attempt finished and visible: succeeded, or failed with a reason.
        assert not attempts.filter(status="pending").exists()
        for attempt in attempts.filter(status="failed"):
            assert attempt.reason_code and attempt.reason, attempt
            assert DomainEvent.objects.filter(dedupe_key=f"recharge_failed:{attempt.pk}") \
                .count() == 1
        for attempt in attempts.filter(status="succeeded"):
            assert Invoice.objects.filter(attempt=attempt).count() == 1
            assert DomainEvent.objects.filter(
                dedupe_key=f"recharge_succeeded:{attempt.pk}").count() == 1

        # Gateway charges that succeeded == ledger recharges, key for key, amount for amount.
        charged = {c.idempotency_key: c.amount
                   for c in SimulatedGatewayCharge.objects.filter(status="succeeded")}
        credited = Counter()
        amounts = {}
        for entry in LedgerEntry.objects.filter(organization__in=orgs,
                                                kind__in=RECHARGE_KINDS):
            credited[str(entry.recharge_attempt_id)] += 1
            amounts[str(entry.recharge_attempt_id)] = entry.amount
        assert set(credited.values()) <= {1}
        assert amounts == charged
        assert set(charged) == {str(a.pk) for a in attempts.filter(status="succeeded")}

        # One order, one attempt: the double submission shared it.
        by_key = {}
        for key, attempt_id, _status in purchase_results:
            by_key.setdefault(key, set()).add(attempt_id)
        assert len(by_key) == ORGS * PURCHASES
        assert all(len(ids) == 1 for ids in by_key.values())
        assert attempts.filter(kind="purchase").count() == ORGS * PURCHASES

        for org in orgs:
            account = CreditAccount.objects.get(organization=org)
            assert account.balance == LedgerEntry.objects.filter(organization=org).aggregate(
                s=Sum("amount"))["s"]
            usage = -LedgerEntry.objects.filter(organization=org, kind="usage").aggregate(
                s=Sum("amount"))["s"]
            assert usage == Decimal(ROUNDS * 30)

        # The faults really happened.
        statuses = Counter(attempts.values_list("status", flat=True))
        reasons = Counter(attempts.filter(status="failed").values_list("reason_code",
                                                                       flat=True))
        retried = attempts.filter(gateway_tries__gt=1).count()
        print(f"\ngateway faults: {attempts.count()} attempts in {burst_s:.1f} s, "
              f"{dict(statuses)}, failed by reason {dict(reasons)}, "
              f"{retried} retried under the same key, "
              f"{len(charged)} gateway charges == {sum(credited.values())} ledger credits")
        assert statuses["succeeded"] and statuses["failed"] and retried
        survived = True
    finally:
        reliability.fault(survived=survived)
