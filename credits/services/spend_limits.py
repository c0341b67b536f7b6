"""Writes of the monthly credits spend limits (credits.spend_limits): setting a limit (of
the organization, of a person, of many people at once), and adding settled usage to the
month's spend counters, with the 80 % and 100 % alerts.

Lock order: the credit account, then people. The counters are written only under the
account lock (`spend_counters_add` runs inside `credits_charge_usage_batch`), so a
read-then-write of a counter cannot race, on SQLite as on PostgreSQL; setting a limit takes
the same lock, so a limit set while a batch crosses it is told once (the event's dedupe key
holds the organization or person, the month and the level).
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from ..models import CreditAccount, Organization, Person, SpendCounter
from ..models.spend import ORGANIZATION_KEY
from ..money import ZERO, money
from ..platform.events import event_emit
from ..platform.services import Actor, ServiceError, audit_record
from ..spend_limits import (
    LimitError,
    crossed_levels,
    month_key,
    month_of,
    parse_limit,
    reached_level,
)

__all__ = [
    "SpendItem",
    "spend_counters_add",
    "spend_limit_set",
    "person_spend_limit_set",
    "people_spend_limit_set",
]


class SpendItem(NamedTuple):
    """One settled usage charge as the limits count it."""

    amount: Decimal  # > 0, account currency
    occurred_at: datetime  # aware: when the call ended
    person_id: int | None


def spend_counters_add(*, account: CreditAccount, items: Sequence[SpendItem]) -> None:
    """Add usage to the month's counters of the organization and of each person, and send
    the alerts of the levels crossed. The caller holds the account lock, in its
    transaction (usage entries and counters commit together)."""
    deltas: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    for amount, occurred_at, person_id in items:
        month = month_of(occurred_at)
        deltas[(month, ORGANIZATION_KEY)] += amount
        if person_id:
            deltas[(month, person_id)] += amount
    if not deltas:
        return
    org = account.organization
    existing = {
        (row.month, row.person_key): row
        for row in SpendCounter.objects.filter(
            organization=org, month__in={m for m, _k in deltas},
            person_key__in={k for _m, k in deltas})
    }
    new, changed, moves = [], [], []
    for (month, key), delta in deltas.items():
        row = existing.get((month, key))
        if row is None:
            row = SpendCounter(organization_id=org.pk, month=month, person_key=key,
                               spent=delta)
            new.append(row)
            before = ZERO
        else:
            before = row.spent
            row.spent = before + delta
            changed.append(row)
        moves.append((month, key, before, row.spent))
    if new:
        SpendCounter.objects.bulk_create(new)
    if changed:
        SpendCounter.objects.bulk_update(changed, ["spent"])
    _alert_crossings(account=account, moves=moves)


def _alert_crossings(*, account: CreditAccount, moves) -> None:
    people_keys = {key for _m, key, _b, _a in moves if key != ORGANIZATION_KEY}
    people = {}
    if people_keys:
        people = {p.pk: p for p in Person.objects.filter(
            organization_id=account.organization_id, pk__in=people_keys,
            credits_monthly_limit__isnull=False).only(
                "pk", "display_name", "upn", "credits_monthly_limit")}
    for month, key, before, after in moves:
        if key == ORGANIZATION_KEY:
            person, limit = None, account.monthly_spend_limit
        else:
            person = people.get(key)
            if person is None:
                continue
            limit = person.credits_monthly_limit
        for level in crossed_levels(limit, before, after):
            _limit_alert(account=account, person=person, month=month, level=level,
                         limit=limit, spent=after)


def _limit_alert(*, account: CreditAccount, person: Person | None, month, level: int,
                 limit: Decimal, spent: Decimal) -> None:
    org = account.organization
    payload = {"level": level, "limit": str(money(limit)), "spent": str(money(spent)),
               "currency": account.currency, "month": month_key(month)}
    if person is None:
        name = f"spend_limit_{level}"
        dedupe = f"{name}:{org.pk}:{month_key(month)}"
    else:
        name = f"person_limit_{level}"
        dedupe = f"{name}:{org.pk}:{person.pk}:{month_key(month)}"
        payload.update({"person_id": person.pk, "person_name": person.display_name,
                        "upn": person.upn})
    event_emit(organization=org, name=name, payload=payload, dedupe_key=dedupe)


def _spent(organization: Organization, month, key: int) -> Decimal:
    return SpendCounter.objects.filter(organization=organization, month=month,
                                       person_key=key).values_list("spent", flat=True
                                                                   ).first() or ZERO


def _clean(monthly_limit, field: str) -> Decimal | None:
    try:
        return parse_limit(monthly_limit, label=field)
    except LimitError as exc:
        raise ServiceError(exc.message, field="monthly_limit", code="invalid_limit") from exc


def _alert_if_reached(*, account, person, limit, now) -> None:
    """A limit set at or below what the month already spent is a crossing too: tell the
    highest level reached (once per month and level, like any crossing)."""
    month = month_of(now)
    key = ORGANIZATION_KEY if person is None else person.pk
    spent = _spent(account.organization, month, key)
    level = reached_level(limit, spent)
    if level is not None:
        _limit_alert(account=account, person=person, month=month, level=level, limit=limit,
                     spent=spent)


def _change(before, after) -> dict:
    return {"from": None if before is None else str(before),
            "to": None if after is None else str(after)}


@transaction.atomic
def spend_limit_set(*, organization: Organization, monthly_limit, actor,
                    now: datetime | None = None) -> CreditAccount:
    """Set (a Decimal, or text such as "250") or clear (None, "off") the organization's
    monthly credits spend limit."""
    from .ledger import credit_account_lock  # ledger imports this module

    limit = _clean(monthly_limit, "Monthly spend limit")
    account = credit_account_lock(organization=organization)
    before = account.monthly_spend_limit
    if before == limit:
        return account
    account.monthly_spend_limit = limit
    account.save(update_fields=["monthly_spend_limit", "updated_at"])
    audit_record(organization=organization, actor=Actor.coerce(actor),
                 action="credits.spend_limit", target=account,
                 changes={"monthly_spend_limit": _change(before, limit)})
    _alert_if_reached(account=account, person=None, limit=limit, now=now or timezone.now())
    return account


def _person_set(*, account, person: Person, limit, actor, now) -> bool:
    before = person.credits_monthly_limit
    if before == limit:
        return False
    person.credits_monthly_limit = limit
    person.save(update_fields=["credits_monthly_limit"])
    audit_record(organization=account.organization, actor=actor,
                 action="person.credits_monthly_limit", target=person,
                 changes={"credits_monthly_limit": _change(before, limit),
                          "upn": person.upn})
    _alert_if_reached(account=account, person=person, limit=limit, now=now)
    return True


@transaction.atomic
def person_spend_limit_set(*, person: Person, monthly_limit, actor,
                           now: datetime | None = None) -> Person:
    """Set or clear one person's monthly credits limit."""
    from .ledger import credit_account_lock

    limit = _clean(monthly_limit, "Monthly credits limit")
    account = credit_account_lock(organization=person.organization)
    person = Person.objects.select_for_update(of=("self",)).get(pk=person.pk)
    _person_set(account=account, person=person, limit=limit, actor=Actor.coerce(actor),
                now=now or timezone.now())
    return person


@transaction.atomic
def people_spend_limit_set(*, organization: Organization, people_ids: Iterable[int],
                           monthly_limit, actor, now: datetime | None = None) -> int:
    """The same limit (or none) for each of these people of the organization, all or
    nothing; returns how many changed."""
    from .ledger import credit_account_lock

    limit = _clean(monthly_limit, "Monthly credits limit")
    account = credit_account_lock(organization=organization)
    actor = Actor.coerce(actor)
    now = now or timezone.now()
    people = Person.objects.select_for_update(of=("self",)).filter(
        organization=organization, pk__in=list(people_ids)).order_by("pk")
    return sum(_person_set(account=account, person=p, limit=limit, actor=actor, now=now)
               for p in people)
