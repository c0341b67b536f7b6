"""Reads of notifications; each takes the organization (and the reader) it reads within."""

from datetime import timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from credits.models import CreditAccount, Organization, Person

from . import catalog
from .models import Delivery, DeliveryStatus, EventRouting, Notification, NotificationRead


def event_roles(*, organization: Organization) -> dict[str, frozenset[str]]:
    """The roles chosen for each routed event: the organization's choice, else the
    defaults of domain/roles.csv."""
    chosen = {
        row.event: frozenset(row.roles)
        for row in EventRouting.objects.filter(organization=organization)
    }
    return {
        name: chosen.get(name, catalog.default_roles(name)) for name in catalog.ROUTED_EVENTS
    }


def recipients_for(*, organization: Organization, name: str, payload: dict) -> list[Person]:
    """The people to tell about an event, resolved now (not when the e-mail goes out)."""
    if catalog.EVENTS[name].audience == catalog.REQUESTER:
        try:
            requester_id = int(payload.get("requester_person_id"))
        except (TypeError, ValueError):
            return []
        return list(Person.objects.filter(organization=organization, pk=requester_id))
    roles = event_roles(organization=organization)[name]
    people = Q(roles__role__in=roles) if roles else Q(pk__in=[])
    requester_id = _requester_id(payload) if payload.get("was_pending") is True else None
    if requester_id is not None:
        # A purchase that was pending: the person who ordered it was told "we will tell
        # you", so they are told the outcome whatever their roles.
        people |= Q(pk=requester_id)
    return list(
        Person.objects.filter(people, organization=organization)
        .distinct()
        .order_by("display_name", "pk")
    )


def _requester_id(payload: dict) -> int | None:
    return catalog.object_id(payload.get("requester_person_id"))


def _visible_to(person: Person) -> Q:
    return Q(organization=person.organization_id) & (
        Q(audience_person__isnull=True) | Q(audience_person=person)
    )


def notifications_for(
    *,
    organization: Organization,
    person: Person,
    name: str | None = None,
    unread_only: bool = False,
    failed_only: bool = False,
) -> QuerySet[Notification]:
    """The message center of one person, newest first, with `is_read` and delivery counts."""
    read = NotificationRead.objects.filter(notification=OuterRef("pk"), person=person)
    qs = (
        Notification.objects.filter(_visible_to(person), organization=organization)
        .select_related("organization")
        .annotate(
            is_read=Exists(read),
            failed_count=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
            delivery_count=Count("deliveries"),
        )
        .order_by("-occurred_at", "-id")
    )
    if name:
        qs = qs.filter(name=name)
    if unread_only:
        qs = qs.filter(is_read=False, occurred_at__gte=person.created_at)
    if failed_only:
        # On the annotation (a HAVING): a second join on deliveries would multiply the
        # counts by the number of failed deliveries.
        qs = qs.filter(failed_count__gt=0)
    return qs


def notification_get(*, organization: Organization, person: Person, pk) -> Notification:
    """One notification the person may see, or Notification.DoesNotExist (a 404)."""
    return Notification.objects.select_related("organization").get(
        _visible_to(person), organization=organization, pk=pk
    )


def unread_count(*, person: Person) -> int:
    # Notifications from before the person joined are not news to them.
    read = NotificationRead.objects.filter(notification=OuterRef("pk"), person=person)
    return (
        Notification.objects.filter(_visible_to(person), occurred_at__gte=person.created_at)
        .exclude(Exists(read))
        .count()
    )


def deliveries_of(*, notification: Notification) -> QuerySet[Delivery]:
    return Delivery.objects.filter(
        organization=notification.organization_id, notification=notification
    ).order_by("recipient_name", "id")


def failed_delivery_count(*, organization: Organization) -> int:
    return Delivery.objects.filter(
        organization=organization, status=DeliveryStatus.FAILED
    ).count()


def due_delivery_ids(*, late_by_seconds: int = 60, limit: int = 500) -> list[int]:
    """Queued deliveries whose task should have run a while ago (broker down, worker
    lost): the beat sweep enqueues them again."""
    cutoff = timezone.now() - timedelta(seconds=late_by_seconds)
    return list(
        Delivery.objects.filter(status=DeliveryStatus.QUEUED, next_attempt_at__lte=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def latest_for(*, person: Person, limit: int = 3) -> list[Notification]:
    return list(
        Notification.objects.filter(_visible_to(person)).order_by("-occurred_at", "-id")[:limit]
    )


def low_balance_threshold(*, organization: Organization):
    """The balance_low level on the credit account (None: off, or no account yet)."""
    return (
        CreditAccount.objects.filter(organization=organization)
        .values_list("low_balance_threshold", flat=True)
        .first()
    )
