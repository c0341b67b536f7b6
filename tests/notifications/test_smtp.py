"""Delivery through a real SMTP server on loopback (aiosmtpd), started by each test: a real
send, an outage ridden out by retries, refusals recorded and shown."""

import email
import socket
import threading
import time
from datetime import timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.utils import timezone

from notifications import tasks
from notifications.models import Delivery, DeliveryStatus
from notifications.services import MAX_ATTEMPTS, delivery_send
from tests.conftest import requires_postgres
from tests.factories import OrganizationFactory, PersonFactory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """An SMTP handler that keeps what it accepts; it can refuse the first `busy` messages
    with a temporary error, refuse every recipient, or be slow."""

    def __init__(self, busy=0, refuse_rcpt=False, delay=0.0):
        self.busy = busy
        self.refuse_rcpt = refuse_rcpt
        self.delay = delay
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)  # hold the SMTP conversation open like a slow server
        if self.busy:
            self.busy -= 1
            return "451 4.3.0 Try again later"
        self.messages.append(
            (envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 Message accepted"


@pytest.fixture
def smtp(settings):
    """Point Django's SMTP backend at a loopback port; `start(handler)` starts the server
    (tests may send before it starts, to see an outage)."""
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    controllers = []

    def start(handler):
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return handler

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def celery_retries_run():
    """Eager Celery propagating errors (the test setting) stops at the first retry; a
    worker would go on retrying, so let eager tasks do the same here."""
    from config.celery import app

    was = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = was


@pytest.fixture
def alex(org):
    return PersonFactory(organization=org, display_name="Alex Billing",
                         roles=["billing_administrator"], preferred_language="fr")


def _queued_delivery(org, emit_lost):
    emit_lost(org)
    return Delivery.objects.get()


@pytest.fixture
def emit_lost(django_capture_on_commit_callbacks):
    """Record and dispatch a recharge_failed event, keeping its deliveries queued (their
    tasks are not run), so a test drives the sending itself."""
    from credits.platform.events import event_dispatch, event_emit
    from tests.notifications.conftest import payload_of

    def emit(org):
        with django_capture_on_commit_callbacks(execute=False):
            event = event_emit(organization=org, name="recharge_failed",
                               payload=payload_of("recharge_failed"), dedupe_key="smtp:1")
            event_dispatch(event_id=event.pk)
        return event

    return emit


@pytest.mark.django_db
def test_a_real_smtp_server_receives_the_email_as_text_and_html(org, alex, emit, smtp):
    box = smtp(Mailbox())
    event = emit(org, "recharge_failed")
    [(rcpt, message)] = box.messages
    assert rcpt == [alex.email]
    # The encoded, folded header decodes with the fold's leading space.
    assert message["Subject"].strip() == (
        "[Contoso] Action requise : la recharge de vos crédits de communication a échoué"
    )
    assert message["Message-ID"] == f"<cc-{event.pk}-{alex.pk}@127.0.0.1>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "100,00\xa0$US" in text and "la carte a expiré" in text
    assert "/billing/communications-credits/payment-methods/" in html
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 1)


@pytest.mark.django_db
def test_an_smtp_outage_fails_first_and_is_retried_to_success(org, alex, smtp, emit_lost):
    delivery = _queued_delivery(org, emit_lost)
    # The mail server is down: the attempt fails, is recorded, and is raised for Celery
    # to retry with back-off.
    with pytest.raises(ConnectionRefusedError):
        delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED
    assert delivery.attempts == 1
    assert "ConnectionRefusedError" in delivery.last_error
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)

    box = smtp(Mailbox())
    # The retry comes (here through the sweep, as after a lost retry message).
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    assert tasks.retry_stuck_deliveries.delay().get() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert len(box.messages) == 1


@pytest.mark.django_db
def test_a_temporary_smtp_refusal_is_retried_by_the_task_and_sent_once(
    org, alex, smtp, emit_lost, celery_retries_run
):
    delivery = _queued_delivery(org, emit_lost)
    box = smtp(Mailbox(busy=2))
    assert tasks.send_delivery.delay(delivery.pk).get() == "sent"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    assert "451" in delivery.last_error
    assert len(box.messages) == 1


@pytest.mark.django_db
def test_a_permanent_refusal_fails_at_once_with_the_reason(
    org, alex, smtp, emit_lost, celery_retries_run
):
    delivery = _queued_delivery(org, emit_lost)
    box = smtp(Mailbox(refuse_rcpt=True))
    assert tasks.send_delivery.delay(delivery.pk).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.reason == "The mail server refused this e-mail."
    assert "550" in delivery.last_error
    assert box.messages == []


@pytest.mark.django_db
def test_a_long_outage_fails_the_delivery_after_the_last_attempt(
    org, alex, smtp, emit_lost, celery_retries_run
):
    delivery = _queued_delivery(org, emit_lost)
    # No server at all; eager Celery runs the retries one after the other.
    assert tasks.send_delivery.delay(delivery.pk).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == MAX_ATTEMPTS
    assert delivery.reason == (
        f"The mail server could not be reached after {MAX_ATTEMPTS} attempts."
    )
    # Failed is final: the sweep leaves it alone.
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert tasks.retry_stuck_deliveries.delay().get() == 0
    assert mail.outbox == []


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_delivery_at_once_send_one_email(smtp):
    org = OrganizationFactory(name="Contoso", slug="contoso-race")
    PersonFactory(organization=org, display_name="Alex Billing", roles=["billing_administrator"])
    from credits.platform.events import event_dispatch, event_emit
    from tests.notifications.conftest import payload_of

    box = smtp(Mailbox(delay=0.5))
    # Outside a test transaction the event is dispatched and sent at once; put the
    # delivery back in the queue to race two senders on it.
    event = event_emit(organization=org, name="balance_zero",
                       payload=payload_of("balance_zero"), dedupe_key="race:1")
    event_dispatch(event_id=event.pk)  # a no-op when the eager task already dispatched it
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.QUEUED, sent_at=None, attempts=0
    )
    box.messages.clear()

    results = []

    def worker():
        from django.db import connection

        try:
            results.append(delivery_send(delivery_id=delivery.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["busy", "sent"]
    assert len(box.messages) == 1
