"""Writes of notifications: turning a domain event into a notification and its deliveries,
sending one delivery exactly once, read marks, and the organization's preferences."""

import logging
import smtplib
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from credits.models import DomainEvent, Organization, Person
from credits.platform.db import advisory_lock
from credits.platform.roles import ROLES_BY_CODE
from credits.platform.services import Actor, ServiceError, audit_record
from credits.queueing import enqueue
from credits.services.ledger import credit_account_set_low_balance_threshold

from . import catalog, emails, selectors
from .models import (
    Delivery,
    DeliveryStatus,
    EventRouting,
    Notification,
    NotificationRead,
)

logger = logging.getLogger(__name__)

# One first try and six retries with exponential back-off (30 s, 1, 2, 4, 8, 16 min): an
# SMTP outage of about half an hour is ridden out before a delivery is marked failed.
MAX_ATTEMPTS = 7
RETRY_BACKOFF = 30
RETRY_BACKOFF_MAX = 1800
SMTP_ERRORS = (smtplib.SMTPException, OSError)
# The first key of the deliveries' advisory locks (PostgreSQL), apart from other users'.
SENDING_LOCK_SPACE = 0x4E4F54  # "NOT"


def retry_delay(attempts: int) -> timedelta:
    """The longest Celery waits before the next try after `attempts` failures."""
    return timedelta(seconds=min(RETRY_BACKOFF * 2 ** max(attempts - 1, 0), RETRY_BACKOFF_MAX))


# --- Events -> notifications and deliveries ----------------------------------------------------


def notification_handle_event(event: DomainEvent) -> None:
    """The subscriber of every event of catalog.EVENTS (runs inside event_dispatch)."""
    notification_record(event=event)


@transaction.atomic
def notification_record(*, event: DomainEvent) -> Notification | None:
    """Record the notification of one event and one delivery per recipient resolved now;
    their e-mails are enqueued after commit. Returns None when this occurrence was already
    recorded (an event dispatched again, a pool alert repeated in the same month)."""
    if event.name not in catalog.EVENTS:
        return None
    organization = event.organization
    key = catalog.occurrence_key(event)
    if Notification.objects.filter(organization=organization, dedupe_key=key).exists():
        return None
    payload = event.payload or {}
    recipients = selectors.recipients_for(
        organization=organization, name=event.name, payload=payload
    )
    audience = None
    if catalog.EVENTS[event.name].audience == catalog.REQUESTER:
        audience = recipients[0] if recipients else None
        if audience is None:
            # No requester to tell: nobody else may see an export link.
            logger.warning("export_ready %s names no person of %s", event.pk, organization)
            return None
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                organization=organization,
                event=event,
                name=event.name,
                payload=payload,
                dedupe_key=key,
                audience_person=audience,
                occurred_at=event.occurred_at,
            )
    except IntegrityError:  # recorded by a concurrent dispatch of the same occurrence
        return None
    Delivery.objects.bulk_create(
        [_delivery_for(notification=notification, event=event, person=p) for p in recipients]
    )
    queued = list(
        Delivery.objects.filter(notification=notification, status=DeliveryStatus.QUEUED)
        .values_list("pk", flat=True)
    )
    if queued:
        transaction.on_commit(partial(enqueue_deliveries, queued))
    return notification


def _delivery_for(*, notification: Notification, event: DomainEvent, person: Person) -> Delivery:
    delivery = Delivery(
        organization=notification.organization,
        notification=notification,
        person=person,
        recipient_name=person.display_name[:128],
        email=person.email,
        language=emails.language_of(person),
        key=f"{event.pk}:{person.pk}",
    )
    if not person.email:
        delivery.status = DeliveryStatus.SKIPPED
        delivery.reason = _("No e-mail address")
    return delivery


def enqueue_deliveries(delivery_ids: Iterable[int]) -> int:
    """One task per delivery; a broker outage is logged and left to the beat sweep
    (retry_stuck_deliveries), so nothing is lost."""
    return sum(enqueue("notifications.tasks.send_delivery", delivery_id)
               for delivery_id in delivery_ids)


# --- Sending -------------------------------------------------------------------------------


def _is_permanent(exc: Exception) -> bool:
    """A refusal of this message by the server (5xx): trying again cannot help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        return exc.smtp_code >= 500
    return False


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _sending_lock(delivery_id: int):
    """Whether this worker holds the right to send the delivery: a lock that holds no
    transaction open while the mail server answers, and frees itself when a worker dies,
    so the redelivered task can send."""
    return advisory_lock(SENDING_LOCK_SPACE, delivery_id)


def delivery_send(*, delivery_id: int) -> str:
    """Send one delivery's e-mail unless it was already sent; returns its status ("busy"
    when another worker is sending it).

    The mail server is spoken to outside any transaction, under the delivery's sending
    lock, so two tasks for the same delivery (a retry and the beat sweep, a redelivered
    message) cannot both send it; the outcome is recorded in a short transaction after.
    A worker that dies before recording leaves the delivery queued for the next task. An
    SMTP error is recorded (attempts, last error); it is raised again while attempts remain
    so that Celery retries with back-off, and after the last attempt the delivery is failed
    and shows in the message center.
    """
    with _sending_lock(delivery_id) as mine:
        if not mine:
            return "busy"
        delivery = (
            Delivery.objects.select_related("notification__organization")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "busy"
        if delivery.status != DeliveryStatus.QUEUED:
            return delivery.status
        try:
            message = emails.build_message(delivery)
        except Exception as exc:  # a broken template must not loop in the sweep forever
            logger.exception("delivery %s could not be rendered", delivery_id)
            return _delivery_record(
                delivery_id=delivery_id, status=DeliveryStatus.FAILED,
                reason=_("The e-mail could not be prepared."), error=exc,
            )
        try:
            message.send(fail_silently=False)
        except SMTP_ERRORS as exc:
            status = _delivery_record(delivery_id=delivery_id, error=exc)
            if status == DeliveryStatus.QUEUED:
                raise
            return status
        return _delivery_record(delivery_id=delivery_id, status=DeliveryStatus.SENT)


@transaction.atomic
def _delivery_record(
    *, delivery_id: int, status: str | None = None, reason: str = "",
    error: Exception | None = None,
) -> str:
    """Record one attempt: its status, or for an SMTP error the status it leads to (queued
    for a retry, failed when permanent or the last); returns the delivery's status."""
    delivery = Delivery.objects.select_for_update(of=("self",)).get(pk=delivery_id)
    if delivery.status != DeliveryStatus.QUEUED:
        return delivery.status
    now = timezone.now()
    delivery.attempts += 1
    if error is not None:
        delivery.last_error = _describe(error)
    if status is None:
        if _is_permanent(error):
            status, reason = DeliveryStatus.FAILED, _("The mail server refused this e-mail.")
        elif delivery.attempts >= MAX_ATTEMPTS:
            status = DeliveryStatus.FAILED
            reason = _("The mail server could not be reached after %(n)d attempts.") % {
                "n": delivery.attempts
            }
        else:
            status = DeliveryStatus.QUEUED
            delivery.next_attempt_at = now + retry_delay(delivery.attempts)
    if status != DeliveryStatus.QUEUED:
        delivery.reason = reason
    if status == DeliveryStatus.SENT:
        delivery.sent_at = now
    delivery.status = status
    delivery.save()
    return delivery.status


@transaction.atomic
def delivery_retry(*, organization: Organization, delivery_id: int, actor: Actor) -> Delivery:
    """Queue a failed delivery again (the admin fixed the mail server or the address)."""
    delivery = (
        Delivery.objects.select_for_update(of=("self",))
        .filter(organization=organization, pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise Delivery.DoesNotExist
    if delivery.status != DeliveryStatus.FAILED:
        raise ServiceError(_("Only a failed delivery can be sent again."), field="delivery")
    delivery.status = DeliveryStatus.QUEUED
    delivery.reason = ""
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save()
    audit_record(
        organization=organization,
        actor=actor,
        action="notification.delivery_retry",
        target=delivery,
        changes={"key": delivery.key, "email": delivery.email},
    )
    transaction.on_commit(partial(enqueue_deliveries, [delivery.pk]))
    return delivery


# --- Read marks ----------------------------------------------------------------------------


def notification_mark_read(*, notification: Notification, person: Person) -> None:
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification=notification, person=person)], ignore_conflicts=True
    )


@transaction.atomic
def notifications_mark_all_read(*, organization: Organization, person: Person) -> int:
    unread = list(
        selectors.notifications_for(organization=organization, person=person)
        .filter(is_read=False)
        .values_list("pk", flat=True)
    )
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification_id=pk, person=person) for pk in unread],
        ignore_conflicts=True,
    )
    return len(unread)


# --- Preferences ---------------------------------------------------------------------------


@transaction.atomic
def event_routing_set(
    *, organization: Organization, routing: dict[str, Iterable[str]], actor: Actor
) -> dict[str, list[str]]:
    """Choose the roles e-mailed for each event; a choice equal to the defaults is stored
    as no choice, so a later change of defaults reaches the organization."""
    changes = {}
    current = {
        row.event: row
        for row in EventRouting.objects.select_for_update(of=("self",)).filter(
            organization=organization)
    }
    for name, roles in routing.items():
        if name not in catalog.ROUTED_EVENTS:
            raise ServiceError(_("Unknown event: %(event)s") % {"event": name}, field="routing")
        codes = sorted(set(roles))
        unknown = [code for code in codes if code not in ROLES_BY_CODE]
        if unknown:
            raise ServiceError(_("Unknown role: %(role)s") % {"role": unknown[0]}, field=name)
        row = current.get(name)
        before = sorted(row.roles) if row else sorted(catalog.default_roles(name))
        if before == codes:
            continue
        if set(codes) == catalog.default_roles(name):
            if row:
                row.delete()
        elif row:
            row.roles = codes
            row.save(update_fields=["roles", "updated_at"])
        else:
            EventRouting.objects.create(organization=organization, event=name, roles=codes)
        changes[name] = {
            "added": sorted(set(codes) - set(before)),
            "removed": sorted(set(before) - set(codes)),
        }
    if changes:
        audit_record(
            organization=organization,
            actor=actor,
            action="notification.routing",
            changes=changes,
        )
    return changes


def low_balance_threshold_set(
    *, organization: Organization, threshold: Decimal | None, actor: Actor
) -> None:
    """The balance_low level lives on the credit account; billing owns the write."""
    credit_account_set_low_balance_threshold(
        organization=organization, threshold=threshold, actor=actor
    )
