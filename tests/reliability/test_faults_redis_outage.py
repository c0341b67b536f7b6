"""Fault: Redis (broker and cache) stops for 30 seconds while a telephony platform posts
calls and the balance crosses the low-balance level and the auto-recharge trigger.

Real processes: gunicorn (config.settings, as deployed), a Celery worker, a private
redis-server, an SMTP server on loopback. While Redis is down, pages and ingestion keep
answering, /healthz says the broker is down, no call is lost. Once it is back, the beat
tasks (sent as beat would) make the missed recharge and the notifications happen, once."""

import email
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.db.models import Sum

from credits.models import (
    CreditAccount,
    DomainEvent,
    LedgerEntry,
    LicenseAssignment,
    RechargeAttempt,
    SimulatedGatewayCharge,
)
from credits.platform.services import Actor
from credits.services.ledger import credit_account_set_low_balance_threshold
from credits.services.recharges import auto_recharge_configure
from notifications.models import Delivery, Notification
from tests.conftest import requires_postgres, requires_redis
from tests.factories import (
    OrganizationFactory,
    PersonFactory,
    funded_account,
    give_licenses,
    graph_row,
    load_test_deck,
    saved_card,
)
from usage.models import CallRecord
from usage.services import api_token_create

from .faults_support import (
    Processes,
    database_url,
    eager_celery,  # noqa: F401 - a fixture, used by pytestmark
    free_port,
    send_task,
    session_cookie,
    wait_until,
)

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("eager_celery")]

OUTAGE_S = 30
BATCHES = 30  # posted while Redis is down
BATCH = 20  # calls per batch, 0.15 each (one minute to the UAE)
PAGES = ["/", "/billing/communications-credits/", "/reports/pstn-usage/", "/notifications/"]
BEAT_TASKS = ["credits.tasks.auto_recharge_sweep", "credits.tasks.dispatch_pending_events",
              "notifications.tasks.retry_stuck_deliveries"]


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((tuple(envelope.rcpt_tos), str(message["Subject"])))
        return "250 Message accepted"


def _batch(n: int, upn: str) -> list[dict]:
    start = datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(minutes=n)
    return [graph_row(f"outage-{n}-{i}", userPrincipalName=upn, calleeNumber="+97142345678",
                      duration=60, startDateTime=(start + timedelta(seconds=i)).isoformat())
            for i in range(BATCH)]


def test_redis_down_for_30_seconds_loses_nothing_and_catches_up_once(tmp_path, reliability):
    survived = False
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        org = OrganizationFactory(country="US", currency="USD")
        load_test_deck(org)
        admin = PersonFactory(organization=org, roles=["global_administrator"], with_user=True,
                              email="megan@contoso.example")
        PersonFactory(organization=org, roles=["billing_administrator"],
                      email="alex@contoso.example")
        caller = PersonFactory(organization=org, usage_location="US")
        give_licenses(caller, "MCOEV", "MCOPSTN1", "MCOPSTNC")
        LicenseAssignment.objects.filter(person=caller).update(
            assigned_at=datetime(2026, 10, 1, tzinfo=UTC))
        funded_account(org, "100.00")
        credit_account_set_low_balance_threshold(organization=org,
                                                 threshold=Decimal(75), actor="tests")
        auto_recharge_configure(organization=org, enabled=True, amount=Decimal(50),
                                trigger=Decimal(50), payment_method=saved_card(org),
                                actor="tests")
        _t, token = api_token_create(organization=org, name="switch",
                                     actor=Actor.system("tests"))
        cookie = session_cookie(admin.user)
        api_headers = {"Authorization": f"Bearer {token}"}

        with Processes(tmp_path) as procs:
            redis = procs.redis()
            env = procs.app_env(database_url=database_url(), redis_url=redis.url,
                                EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}")
            web = procs.web(env)
            worker = procs.worker(env)

            status, body, _s, _h = web.request("POST", "/api/v1/pstn-calls",
                                               body={"value": _batch(0, caller.upn)},
                                               headers=api_headers)
            assert status == 200 and json.loads(body)["accepted"] == BATCH, body

            # --- Redis goes away ---------------------------------------------------------
            redis.stop()
            down_at = time.monotonic()
            status, body, seconds, _h = web.request("GET", "/healthz")
            health = json.loads(body)
            assert status == 503 and health["down"] == ["broker"], body
            assert seconds < 10
            statuses, slowest = [], 0.0
            for n in range(1, BATCHES + 1):
                status, body, seconds, _h = web.request(
                    "POST", "/api/v1/pstn-calls", body={"value": _batch(n, caller.upn)},
                    headers=api_headers)
                statuses.append(status)
                slowest = max(slowest, seconds)
                assert status == 200, (status, body[:2000], web.proc.log())
                assert json.loads(body)["accepted"] == BATCH
                for path in PAGES[n % len(PAGES):n % len(PAGES) + 1]:
                    status, body, seconds, _h = web.request("GET", path,
                                                            headers={"Cookie": cookie})
                    statuses.append(status)
                    slowest = max(slowest, seconds)
                    assert status == 200, (path, status, body[:2000])
                time.sleep(max(0.0, (down_at + n * (OUTAGE_S - 5) / BATCHES)
                               - time.monotonic()))
            assert (time.monotonic() - down_at) < OUTAGE_S + 15, "requests too slow"
            assert web.request("GET", "/healthz")[0] == 503
            account = CreditAccount.objects.get(organization=org)
            assert account.balance == Decimal("7.00")  # below the trigger, not recharged
            assert not RechargeAttempt.objects.filter(organization=org).exists()
            time.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))

            # --- Redis is back (empty: what was queued before is gone) -------------------
            redis.start()
            outage_s = time.monotonic() - down_at
            wait_until(lambda: web.request("GET", "/healthz")[0] == 200, timeout=20,
                       interval=0.5, what="/healthz to recover")

            def caught_up():
                for name in BEAT_TASKS:
                    send_task(redis.url, name)
                recharged = LedgerEntry.objects.filter(organization=org,
                                                       kind="auto_recharge").exists()
                events = DomainEvent.objects.filter(organization=org)
                deliveries = Delivery.objects.filter(organization=org)
                return (recharged and events.exists()
                        and not events.filter(dispatched_at__isnull=True).exists()
                        and deliveries.count() == 4
                        and not deliveries.exclude(status="sent").exists()
                        and len(mailbox.messages) >= 4)

            wait_until(caught_up, timeout=90, interval=3, what="the catch-up after Redis")
            caught_up_s = time.monotonic() - down_at - outage_s
            for name in BEAT_TASKS:  # beat runs again: nothing more happens
                send_task(redis.url, name)
            time.sleep(3)
            assert worker.alive()

        # No call lost, each charged once.
        calls = CallRecord.objects.filter(organization=org)
        assert calls.count() == (BATCHES + 1) * BATCH
        assert set(calls.values_list("graph_id", flat=True)) == {
            f"outage-{n}-{i}" for n in range(BATCHES + 1) for i in range(BATCH)}
        usage = LedgerEntry.objects.filter(organization=org, kind="usage")
        assert usage.count() == calls.count()
        assert -usage.aggregate(s=Sum("amount"))["s"] == Decimal("93.00")
        # The missed recharge, exactly once: one attempt, one gateway charge, one credit.
        (attempt,) = RechargeAttempt.objects.filter(organization=org)
        assert (attempt.status, attempt.amount) == ("succeeded", Decimal("50.00"))
        assert [(g.idempotency_key, g.tries) for g in SimulatedGatewayCharge.objects.filter(
            idempotency_key=str(attempt.pk))] == [(str(attempt.pk), 1)]
        assert LedgerEntry.objects.filter(organization=org, kind="auto_recharge").count() == 1
        account = CreditAccount.objects.get(organization=org)
        assert account.balance == Decimal("57.00") == LedgerEntry.objects.filter(
            organization=org).aggregate(s=Sum("amount"))["s"]
        # The notifications, once each: one per event, one e-mail per person.
        names = sorted(DomainEvent.objects.filter(organization=org).values_list("name",
                                                                                flat=True))
        assert names == ["balance_low", "recharge_succeeded"]
        assert Notification.objects.filter(organization=org).count() == 2
        assert Delivery.objects.filter(organization=org, status="sent").count() == 4
        assert len(mailbox.messages) == 4 == len(set(mailbox.messages))
        print(f"\nredis outage: {outage_s:.0f} s, {BATCHES * BATCH} calls in {BATCHES} "
              f"batches + {BATCHES} pages during it ({len(statuses)} requests, "
              f"all {set(statuses)}, slowest {slowest:.2f} s); caught up "
              f"{caught_up_s:.1f} s after: 1 recharge of {attempt.amount}, "
              f"{len(mailbox.messages)} e-mails for {names}")
        survived = True
    finally:
        controller.stop()
        reliability.fault(survived=survived)
