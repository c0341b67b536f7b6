"""Role-based recipients, notifications, deliveries and the message center.

One `Notification` per occurrence of a domain event (unique per organization and
occurrence key), one `Delivery` per recipient resolved when the event happened (unique
delivery key: event id + person id). A delivery is sent by its own Celery task, which
holds the delivery's lock (not a transaction) while the e-mail goes out and sends only while
it is still queued, so a retried or repeated task never sends the same e-mail twice.
`NotificationRead` keeps read/unread per person, and `EventRouting` stores an
organization's choice of roles per event when it differs from the defaults of
domain/roles.csv.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from credits.models import DomainEvent, Organization, Person


class Notification(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications"
    )
    # Kept when the outbox is pruned: the message center outlives the event row.
    event = models.OneToOneField(
        DomainEvent, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="notification",
    )
    name = models.CharField(_("event"), max_length=64)
    payload = models.JSONField(default=dict)
    # One notification per occurrence: the event's dedupe key, or for pool alerts the pool
    # and month, so a pool is announced once per month even if its event is repeated.
    dedupe_key = models.CharField(max_length=200)
    # Set when only one person may see it (export_ready: its requester).
    audience_person = models.ForeignKey(
        Person, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedupe_key"], name="notification_once_per_occurrence"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-occurred_at"], name="notification_org_recent"),
            models.Index(fields=["organization", "name"], name="notification_org_name"),
        ]

    def __str__(self):
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class Delivery(models.Model):
    """One e-mail of one notification to one person."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+"
    )
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    person = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Who and where, as resolved when the event happened (a later change of address or
    # language does not rewrite what was decided then).
    recipient_name = models.CharField(_("recipient"), max_length=128)
    email = models.EmailField(_("e-mail"), blank=True)
    language = models.CharField(_("language"), max_length=8, default="en")
    key = models.CharField(_("delivery key"), max_length=100, unique=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices,
        default=DeliveryStatus.QUEUED,
    )
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When a queued delivery is due; the beat sweep re-enqueues it a minute after that.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["recipient_name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "sent", "failed", "skipped"]),
                name="delivery_status_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(sent_at__isnull=False),
                name="delivery_sent_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_queued_due",
                condition=models.Q(status="queued"),
            ),
            models.Index(fields=["organization", "status"], name="delivery_org_status"),
        ]

    def __str__(self):
        return f"{self.key} {self.status}"


class NotificationRead(models.Model):
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="reads"
    )
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "person"], name="notification_read_once"
            ),
        ]

    def __str__(self):
        return f"{self.notification_id} read by {self.person_id}"


class EventRouting(models.Model):
    """An organization's roles for one event, stored only when they differ from the
    defaults (credit_alerts / pool_alerts of domain/roles.csv)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="+"
    )
    event = models.CharField(_("event"), max_length=64)
    roles = models.JSONField(_("roles"), default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "event"], name="event_routing_once"
            ),
        ]

    def __str__(self):
        return f"{self.event}: {', '.join(self.roles)}"
