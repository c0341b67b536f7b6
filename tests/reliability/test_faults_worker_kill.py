"""Fault: a real Celery worker is SIGKILLed in the middle of a recharge, an export and an
e-mail delivery; a second worker finishes each one from the redelivered message (Redis
visibility timeout), exactly once.

Each test runs its own Redis and workers (config.settings, as deployed) against the test
database. "In the middle" is a test-only pause point (credits/pausepoints.py) for the
recharge (after the gateway charged the card, before the ledger is credited) and the
export (file written, export not yet recorded); for the e-mail it is the SMTP conversation
itself: the loopback server holds the first one after MAIL FROM, and the worker dies there.
"""

import asyncio
import email
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import policy
from pathlib import Path

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from django.db import transaction
from django.db.models import Sum

from credits import tasks as credits_tasks
from credits.models import (
    CreditAccount,
    DomainEvent,
    LedgerEntry,
    RechargeAttempt,
    SimulatedGatewayCharge,
)
from credits.platform.events import event_emit
from credits.platform.services import Actor
from credits.services.ledger import UsageCharge, credits_charge_usage_batch
from credits.services.recharges import auto_recharge_configure
from notifications.models import Delivery, DeliveryStatus
from tests.conftest import requires_postgres, requires_redis
from tests.factories import (
    OrganizationFactory,
    PersonFactory,
    call_record,
    funded_account,
    saved_card,
)
from usage import exports
from usage.models import CallRecord, Export, ExportStatus
from usage.report import ReportFilters

from .faults_support import (
    Processes,
    database_url,
    eager_celery,  # noqa: F401 - a fixture, used by pytestmark
    free_port,
    send_task,
    wait_until,
)

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("eager_celery")]

VISIBILITY = 3  # seconds before an unacknowledged message is delivered again


@pytest.fixture
def procs(tmp_path):
    with Processes(tmp_path) as p:
        yield p


def _kill_at_pause(procs, env, tmp_path, point, start_task):
    """Start a worker that pauses at `point`, give it the task, SIGKILL it there."""
    marker = tmp_path / f"paused-{point}"
    worker = procs.worker({**env, "CC_TEST_PAUSE_AT": point,
                           "CC_TEST_PAUSE_MARKER": str(marker)}, name="doomed")
    start_task()
    wait_until(marker.exists, timeout=30, interval=0.02, what=f"the worker to reach {point}")
    worker.kill()
    worker.popen.wait(10)
    return worker


def _env(procs, redis, tmp_path, **extra):
    return procs.app_env(database_url=database_url(), redis_url=redis.url,
                         CELERY_VISIBILITY_TIMEOUT=VISIBILITY, **extra)


def test_worker_killed_between_gateway_and_ledger_recharges_once(procs, tmp_path, reliability,
                                                                 monkeypatch):
    survived = False
    try:
        org = OrganizationFactory()
        funded_account(org, "60.00")
        auto_recharge_configure(organization=org, enabled=True, amount=Decimal(50),
                                trigger=Decimal(50), payment_method=saved_card(org),
                                actor="tests")
        # Usage takes the balance below the trigger; the recharge is left to the worker.
        monkeypatch.setattr(credits_tasks, "enqueue_auto_recharge_check", lambda org_id: None)
        credits_charge_usage_batch(organization=org, charges=[UsageCharge(
            key="call:k1", amount=Decimal("20.00"), description="",
            occurred_at=datetime.now(UTC))])
        redis = procs.redis()
        env = _env(procs, redis, tmp_path)
        _kill_at_pause(procs, env, tmp_path, "recharge_after_gateway", lambda: send_task(
            redis.url, "credits.tasks.auto_recharge_check", [org.pk]))

        # Killed after the card was charged, before the ledger was credited.
        attempt = RechargeAttempt.objects.get(organization=org)
        assert attempt.status == "pending"
        assert SimulatedGatewayCharge.objects.get(idempotency_key=str(attempt.pk)).status \
            == "succeeded"
        assert not LedgerEntry.objects.filter(organization=org, kind="auto_recharge").exists()

        procs.worker(env, name="rescuer")
        wait_until(lambda: LedgerEntry.objects.filter(organization=org,
                                                      kind="auto_recharge").exists(),
                   timeout=45, what="the redelivered recharge")
        # A late duplicate and the beat sweep change nothing.
        send_task(redis.url, "credits.tasks.auto_recharge_check", [org.pk])
        send_task(redis.url, "credits.tasks.auto_recharge_sweep")
        wait_until(lambda: DomainEvent.objects.filter(
            organization=org, name="recharge_succeeded", dispatched_at__isnull=False).exists(),
            timeout=30, what="recharge_succeeded dispatched")
        time.sleep(1.5)

        attempt.refresh_from_db()
        assert attempt.status == "succeeded"
        credits = LedgerEntry.objects.filter(organization=org, kind="auto_recharge")
        assert [(e.amount, e.recharge_attempt_id) for e in credits] == [
            (Decimal("50.00"), attempt.pk)]
        gateway = SimulatedGatewayCharge.objects.filter(token=attempt.payment_method
                                                        .gateway_token)
        assert [(g.idempotency_key, g.status, g.tries) for g in gateway] == [
            (str(attempt.pk), "succeeded", 1)]
        account = CreditAccount.objects.get(organization=org)
        assert account.balance == Decimal("90.00") == LedgerEntry.objects.filter(
            organization=org).aggregate(s=Sum("amount"))["s"]
        assert DomainEvent.objects.filter(organization=org,
                                          name="recharge_succeeded").count() == 1
        survived = True
    finally:
        reliability.fault(survived=survived)


def test_worker_killed_after_writing_an_export_leaves_one_file(procs, tmp_path, reliability,
                                                               monkeypatch, settings):
    survived = False
    try:
        settings.EXPORT_DIR = tmp_path / "exports"
        org = OrganizationFactory()
        requester = PersonFactory(organization=org, email="reports@contoso.example",
                                  roles=["global_reader"])
        start = datetime(2026, 11, 2, 9, tzinfo=UTC)
        CallRecord.objects.bulk_create([
            call_record(org, start=start + timedelta(minutes=i)) for i in range(300)])
        monkeypatch.setattr(exports, "enqueue", lambda name, export_id: None)
        export = exports.export_request(
            organization=org, requester=requester, fmt="xlsx",
            filters=ReportFilters(start=date(2026, 11, 1), end=date(2026, 11, 30),
                                  range="custom"),
            actor=Actor.system("tests"))
        redis = procs.redis()
        env = _env(procs, redis, tmp_path, EXPORT_DIR=settings.EXPORT_DIR)
        _kill_at_pause(procs, env, tmp_path, "export_after_write", lambda: send_task(
            redis.url, "usage.tasks.run_export", [export.pk]))

        folder = Path(settings.EXPORT_DIR) / str(org.pk)
        assert Export.objects.get(pk=export.pk).status == ExportStatus.RUNNING
        assert len(list(folder.iterdir())) == 1  # the dead run's file, not recorded

        procs.worker(env, name="rescuer")
        wait_until(lambda: Export.objects.get(pk=export.pk).status == ExportStatus.DONE,
                   timeout=45, what="the redelivered export")
        send_task(redis.url, "usage.tasks.run_export", [export.pk])  # a late duplicate
        time.sleep(1.5)

        export.refresh_from_db()
        files = sorted(folder.iterdir())
        assert files == [folder / export.file_path.split("/")[-1]]
        assert exports.export_file(export) == files[0].resolve()
        sheet = openpyxl.load_workbook(files[0], read_only=True)["Usage"]
        assert sheet.max_row - 1 == export.row_count == 300
        assert DomainEvent.objects.filter(organization=org, name="export_ready").count() == 1
        survived = True
    finally:
        reliability.fault(survived=survived)


class HoldingMailbox:
    """Keeps accepted messages; holds the first SMTP conversation at RCPT TO until
    released, so the sending worker can be killed in the middle of it."""

    def __init__(self):
        self.messages = []
        self.held = threading.Event()
        self.release = threading.Event()
        self._first = True

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self._first:
            self._first = False
            self.held.set()
            for _ in range(600):
                if self.release.is_set():
                    break
                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((tuple(envelope.rcpt_tos), email.message_from_bytes(
            envelope.content, policy=policy.default)))
        return "250 Message accepted"


def test_worker_killed_in_the_middle_of_an_email_sends_it_once(procs, tmp_path, reliability,
                                                                monkeypatch):
    survived = False
    mailbox = HoldingMailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        from notifications import services as notification_services

        org = OrganizationFactory()
        PersonFactory(organization=org, email="billing@contoso.example",
                      roles=["billing_administrator"])
        monkeypatch.setattr(notification_services, "enqueue_deliveries", lambda ids: 0)
        with transaction.atomic():
            event_emit(organization=org, name="balance_zero",
                       payload={"balance": "-1.00", "currency": "USD",
                                "add_funds_path": "/billing/communications-credits/add-funds/"},
                       dedupe_key="faults:balance_zero")
        (delivery,) = Delivery.objects.filter(organization=org)
        assert delivery.status == DeliveryStatus.QUEUED

        redis = procs.redis()
        env = _env(procs, redis, tmp_path, EMAIL_URL=f"smtp://127.0.0.1:{port}")
        worker = procs.worker({**env}, name="doomed")
        send_task(redis.url, "notifications.tasks.send_delivery", [delivery.pk])
        assert mailbox.held.wait(30), worker.log()
        worker.kill()
        worker.popen.wait(10)
        mailbox.release.set()
        time.sleep(0.3)
        assert mailbox.messages == []
        assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.QUEUED

        procs.worker(env, name="rescuer")
        wait_until(lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENT,
                   timeout=45, what="the redelivered e-mail")
        # A late duplicate and the beat sweep send nothing more.
        send_task(redis.url, "notifications.tasks.send_delivery", [delivery.pk])
        send_task(redis.url, "notifications.tasks.retry_stuck_deliveries")
        time.sleep(1.5)
        assert [rcpts for rcpts, _m in mailbox.messages] == [("billing@contoso.example",)]
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 1
        survived = True
    finally:
        controller.stop()
        reliability.fault(survived=survived)
