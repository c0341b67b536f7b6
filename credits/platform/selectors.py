"""Reads of the platform: the people of an organization and its audit log. Every function
takes the organization it reads within."""

from django.db.models import QuerySet

from .models import AuditEntry, Organization, Person


def person_get(*, organization: Organization, pk) -> Person:
    """A person of this organization, or Person.DoesNotExist (a 404 for views)."""
    return Person.objects.get(organization=organization, pk=pk)


def audit_entries(*, organization: Organization) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(organization=organization).select_related("actor")
