"""Reads of the platform: the people of an organization and its audit log. Every function
takes the organization it reads within."""

import ipaddress
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q, QuerySet

from .models import AuditEntry, Organization, Person


def person_get(*, organization: Organization, pk) -> Person:
    """A person of this organization, or Person.DoesNotExist (a 404 for views)."""
    return Person.objects.get(organization=organization, pk=pk)


def audit_entries(*, organization: Organization) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(organization=organization).select_related("actor")


def audit_entries_filtered(*, organization: Organization, q: str = "", actor_id=None,
                           action: str = "", start: date | None = None,
                           end: date | None = None) -> QuerySet[AuditEntry]:
    """The audit log with the page's filters; dates are UTC days, both inclusive."""
    qs = audit_entries(organization=organization)
    if actor_id:
        qs = qs.filter(actor_id=actor_id)
    if action:
        qs = qs.filter(action=action)
    if start:
        qs = qs.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=UTC))
    if end:
        qs = qs.filter(created_at__lt=datetime.combine(end + timedelta(days=1), time.min,
                                                       tzinfo=UTC))
    if q:
        text = Q(actor_label__icontains=q) | Q(target_label__icontains=q) | Q(
            action__icontains=q)
        try:
            text |= Q(ip_address=str(ipaddress.ip_address(q)))
        except ValueError:
            pass
        qs = qs.filter(text)
    return qs.order_by("-created_at", "-id")


def audit_actions(*, organization: Organization) -> list[str]:
    return list(AuditEntry.objects.filter(organization=organization).order_by("action")
                .values_list("action", flat=True).distinct())


def audit_actors(*, organization: Organization) -> QuerySet[Person]:
    ids = AuditEntry.objects.filter(organization=organization, actor__isnull=False).values(
        "actor_id")
    return Person.objects.filter(organization=organization, pk__in=ids).order_by(
        "display_name", "upn")
