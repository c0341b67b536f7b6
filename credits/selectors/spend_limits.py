"""Reads of the monthly credits spend limits (credits.spend_limits): month-to-date spend
against the organization's limit and against each person's."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from ..models import CreditAccount, Organization, Person, SpendCounter
from ..models.spend import ORGANIZATION_KEY
from ..money import ZERO, money
from ..spend_limits import SpendLine, month_of

__all__ = ["organization_spend", "person_spend", "people_spend", "people_with_limits",
           "spend_overview"]


def _places(value) -> Decimal:
    """A subquery's amount to the cent (SQLite returns it unquantized, not as the column)."""
    return ZERO if value is None else money(value)


def _month_spent(*, organization: Organization, month, person_key) -> Subquery:
    return Subquery(SpendCounter.objects.filter(
        organization=organization, month=month, person_key=person_key,
    ).values("spent")[:1])


def _organization_facts(*, organization: Organization, at: datetime) -> tuple[SpendLine, bool]:
    """The organization's line and whether anybody has a limit of their own, in one query
    (pages show the line on every visit, most organizations set no limit at all)."""
    month = month_of(at)
    row = Organization.objects.filter(pk=organization.pk).annotate(
        limit=Subquery(CreditAccount.objects.filter(organization=OuterRef("pk")).values(
            "monthly_spend_limit")[:1]),
        spent=_month_spent(organization=organization, month=month,
                           person_key=ORGANIZATION_KEY),
        anyone=Exists(people_with_limits(organization=organization)),
    ).values("limit", "spent", "anyone").first() or {"limit": None, "spent": None,
                                                     "anyone": False}
    limit = None if row["limit"] is None else _places(row["limit"])
    return (SpendLine(month, _places(row["spent"]), limit, organization.currency),
            row["anyone"])


def organization_spend(*, organization: Organization, at: datetime) -> SpendLine:
    return _organization_facts(organization=organization, at=at)[0]


def person_spend(*, person: Person, at: datetime) -> SpendLine:
    month = month_of(at)
    spent = SpendCounter.objects.filter(
        organization_id=person.organization_id, month=month, person_key=person.pk,
    ).values_list("spent", flat=True).first()
    return SpendLine(month, spent or ZERO, person.credits_monthly_limit,
                     person.organization.currency)


def people_with_limits(*, organization: Organization) -> QuerySet[Person]:
    return Person.objects.filter(organization=organization,
                                 credits_monthly_limit__isnull=False)


def people_spend(*, organization: Organization, at: datetime,
                 status: str = "") -> list[tuple[Person, SpendLine]]:
    """The people who have a limit, with the month's spend against it, most used first;
    `status` "near" keeps those at 80 % or more (over included), "over" those at 100 %."""
    month = month_of(at)
    people = people_with_limits(organization=organization).annotate(
        month_spent=_month_spent(organization=organization, month=month,
                                 person_key=OuterRef("pk"))).order_by("display_name")
    rows = [(p, SpendLine(month, _places(p.month_spent), p.credits_monthly_limit,
                          organization.currency)) for p in people]
    if status == "near":
        rows = [r for r in rows if r[1].status in ("near", "over")]
    elif status == "over":
        rows = [r for r in rows if r[1].status == "over"]
    rows.sort(key=lambda r: -(r[1].percent or 0))
    return rows


def spend_overview(*, organization: Organization, at: datetime,
                   status: str = "near") -> tuple[SpendLine, list, bool]:
    """(the organization's line, the people per `status` as people_spend gives them,
    whether anybody has a limit): one query, and a second only when somebody has a limit."""
    line, anyone = _organization_facts(organization=organization, at=at)
    people = people_spend(organization=organization, at=at, status=status) if anyone else []
    return line, people, anyone


def spend_facts(*, organization: Organization, person_id: int, at: datetime) -> tuple:
    """(organization limit, its month's spend, the person's limit, their month's spend):
    what call authorization reads of the limits (usage.pg.authorize_facts reads the same
    in its one query)."""
    month = month_of(at)
    org_limit = CreditAccount.objects.filter(organization=organization).values_list(
        "monthly_spend_limit", flat=True).first()
    person_limit = Person.objects.filter(pk=person_id).values_list(
        "credits_monthly_limit", flat=True).first()
    spent = dict(SpendCounter.objects.filter(
        organization=organization, month=month,
        person_key__in=[ORGANIZATION_KEY, person_id]).values_list("person_key", "spent"))
    return (org_limit, spent.get(ORGANIZATION_KEY, ZERO), person_limit,
            spent.get(person_id, ZERO))
