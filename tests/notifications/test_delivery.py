"""Exactly once per occurrence: repeated events, re-dispatches and retried tasks send no
duplicate; a delivery whose task was lost, or whose worker died while sending, is sent by
the next task or the beat sweep; the mail server is never spoken to inside a
transaction."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connection
from django.utils import timezone

from credits.models import DomainEvent
from credits.platform.events import event_dispatch
from notifications import tasks
from notifications.models import Delivery, DeliveryStatus, Notification
from notifications.services import delivery_send
from tests.conftest import requires_postgres
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admins(org):
    return [
        PersonFactory(organization=org, display_name="Megan Global",
                      roles=["global_administrator"]),
        PersonFactory(organization=org, display_name="Alex Billing",
                      roles=["billing_administrator"]),
    ]


def test_the_same_occurrence_emitted_twice_is_emailed_once(org, admins, emit):
    assert emit(org, "balance_zero", dedupe_key="zero:1") is not None
    assert emit(org, "balance_zero", dedupe_key="zero:1") is None
    assert len(mail.outbox) == 2
    assert Notification.objects.count() == 1


def test_an_event_dispatched_again_after_a_crash_sends_nothing_more(
    org, admins, emit, django_capture_on_commit_callbacks
):
    event = emit(org, "recharge_failed")
    # A crash between the handlers and the commit leaves the event undispatched.
    DomainEvent.objects.filter(pk=event.pk).update(dispatched_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert event_dispatch(event_id=event.pk) is True
    assert len(mail.outbox) == 2
    assert Delivery.objects.count() == 2


def test_each_balance_zero_crossing_is_emailed_once_per_person(org, admins, emit):
    emit(org, "balance_zero", dedupe_key="zero:crossing:1")
    emit(org, "balance_zero", dedupe_key="zero:crossing:1")
    emit(org, "balance_zero", dedupe_key="zero:crossing:2")
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [admins[0].email, admins[1].email] * 2
    )


def test_a_pool_alert_is_sent_once_per_pool_per_month(org, admins, emit):
    emit(org, "pool_80", dedupe_key="pool80:a")
    emit(org, "pool_80", dedupe_key="pool80:b")  # same pool, same month, another event row
    emit(org, "pool_80", dedupe_key="pool80:c", month="2026-06")
    emit(org, "pool_80", dedupe_key="pool80:d", country="CA", pool="Domestic calling, CA")
    assert Notification.objects.filter(name="pool_80").count() == 3
    assert len(mail.outbox) == 3  # only the billing administrator has pool_alerts


def test_a_retried_or_repeated_task_never_sends_the_same_email_twice(org, admins, emit):
    emit(org, "balance_zero")
    delivery = Delivery.objects.first()
    assert delivery.status == DeliveryStatus.SENT
    for _ in range(3):
        assert tasks.send_delivery.delay(delivery.pk).get() == "sent"
        assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert len(mail.outbox) == 2
    delivery.refresh_from_db()
    assert delivery.attempts == 1


def test_delivery_keys_are_event_and_person(org, admins, emit):
    event = emit(org, "balance_zero")
    keys = set(Delivery.objects.values_list("key", flat=True))
    assert keys == {f"{event.pk}:{p.pk}" for p in admins}


def _emit_without_enqueueing(org, name, django_capture_on_commit_callbacks):
    """The event is dispatched but what it enqueues on commit is lost (broker down, worker
    killed before it took the message)."""
    from credits.platform.events import event_emit

    with django_capture_on_commit_callbacks(execute=False):
        event = event_emit(organization=org, name=name, payload={}, dedupe_key=f"lost:{name}")
    with django_capture_on_commit_callbacks(execute=False):
        event_dispatch(event_id=event.pk)
    return event


def test_deliveries_whose_task_was_lost_are_sent_by_the_sweep_a_minute_later(
    org, admins, django_capture_on_commit_callbacks
):
    _emit_without_enqueueing(org, "recharge_failed", django_capture_on_commit_callbacks)
    assert mail.outbox == []
    assert Delivery.objects.filter(status=DeliveryStatus.QUEUED).count() == 2

    assert tasks.retry_stuck_deliveries.delay().get() == 0  # not a minute late yet
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=61))
    assert tasks.retry_stuck_deliveries.delay().get() == 2
    assert len(mail.outbox) == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert tasks.retry_stuck_deliveries.delay().get() == 0


def test_the_beat_schedule_runs_the_sweep_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["notifications-retry-stuck-deliveries"]
    assert entry["task"] == "notifications.tasks.retry_stuck_deliveries"
    assert entry["schedule"] == 60.0


class TransactionSpyBackend(locmem.EmailBackend):
    """The locmem backend, noting for each send whether a transaction was open: a mail
    server spoken to inside one would hold the delivery's row lock (and a connection)
    for the whole SMTP conversation."""

    in_atomic_block: list[bool] = []

    def send_messages(self, messages):
        type(self).in_atomic_block.append(connection.in_atomic_block)
        return super().send_messages(messages)


@pytest.mark.django_db(transaction=True)
def test_the_mail_server_is_spoken_to_outside_any_transaction(org, admins, emit, settings):
    settings.EMAIL_BACKEND = f"{__name__}.TransactionSpyBackend"
    TransactionSpyBackend.in_atomic_block = []
    emit(org, "balance_zero")
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    # A queued delivery sent by a task of its own, as a worker does.
    delivery = Delivery.objects.first()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.QUEUED, sent_at=None, attempts=0
    )
    assert tasks.send_delivery.delay(delivery.pk).get() == "sent"
    assert TransactionSpyBackend.in_atomic_block == [False, False, False]
    assert len(mail.outbox) == 3


def test_a_worker_that_dies_mid_send_leaves_the_delivery_to_the_next_task(
    org, admins, emit, monkeypatch
):
    emit(org, "balance_zero")
    delivery = Delivery.objects.first()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.QUEUED, sent_at=None, attempts=0
    )
    real_send = locmem.EmailBackend.send_messages

    def killed(self, messages):
        raise KeyboardInterrupt  # the worker is stopped while the server answers

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", killed)
    with pytest.raises(KeyboardInterrupt):
        delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.QUEUED, 0)

    monkeypatch.setattr(locmem.EmailBackend, "send_messages", real_send)
    mail.outbox.clear()
    assert tasks.send_delivery.delay(delivery.pk).get() == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)
    assert [m.to for m in mail.outbox] == [[delivery.email]]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_delivery_another_worker_is_sending_is_left_to_it(org, admins, emit):
    emit(org, "balance_zero")
    delivery = Delivery.objects.first()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.QUEUED, sent_at=None, attempts=0
    )
    mail.outbox.clear()
    holding, release = threading.Event(), threading.Event()

    def other_worker():
        # Another worker's connection holds the delivery's sending lock.
        from notifications.services import _sending_lock

        try:
            with _sending_lock(delivery.pk) as mine:
                assert mine
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert holding.wait(10)
        assert delivery_send(delivery_id=delivery.pk) == "busy"
    finally:
        release.set()
        thread.join()
    assert mail.outbox == []
    assert delivery_send(delivery_id=delivery.pk) == "sent"  # the lock ends with its holder
