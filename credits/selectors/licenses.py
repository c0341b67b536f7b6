"""Reads for licenses, seats and minute pools; always scoped by organization."""

import bisect
from collections import defaultdict
from datetime import UTC, date, datetime

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from .. import products as P
from ..models import LicenseAssignment, MinutePool, Person, PersonRole, Subscription
from ..products import PoolKey

__all__ = [
    "licenses_at",
    "pool_status",
    "person_licenses",
    "person_license_warnings",
    "seat_summary",
    "people_list",
    "month_start",
    "next_month",
]


def month_start(at: datetime | None = None) -> date:
    at = (at or timezone.now()).astimezone(UTC)
    return date(at.year, at.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


class PoolCapacity:
    """Pool sizes at any instant, from one read of the assignment intervals that feed the
    pools of a batch: size(at) = per-license minutes x (#assigned <= at - #removed <= at)."""

    def __init__(self, organization, keys):
        self._series = {}
        kinds = {k.kind for k in keys}
        skus = {sku for kind in kinds for sku in P.POOL_SKUS.get(kind, ())}
        rows = LicenseAssignment.objects.filter(organization=organization, sku__in=skus)
        countries = {k.country for k in keys if k.kind != P.CONFERENCE}
        if P.CONFERENCE not in kinds:
            rows = rows.filter(usage_location__in=countries)
        rows = list(rows.values_list("sku", "usage_location", "assigned_at", "removed_at"))
        for key in keys:
            series = []
            for sku in P.POOL_SKUS.get(key.kind, ()):
                per_license = P.included_minutes(sku, key.kind, key.country)
                starts, ends = [], []
                for r_sku, country, start, end in rows:
                    if r_sku != sku or (key.kind != P.CONFERENCE and country != key.country):
                        continue
                    starts.append(start)
                    if end is not None:
                        ends.append(end)
                starts.sort()
                ends.sort()
                series.append((per_license, starts, ends))
            self._series[key] = series

    def at(self, key: PoolKey, at: datetime) -> int:
        total = 0
        for per_license, starts, ends in self._series.get(key, ()):
            # assigned_at <= at < removed_at
            active = bisect.bisect_right(starts, at) - bisect.bisect_right(ends, at)
            total += per_license * active
        return total


def pool_size(*, kind: str, country: str, seats) -> int:
    """Minutes a pool of `kind` in usage country `country` holds with `seats` (SKU -> number
    of licenses assigned at the instant asked about): what `PoolCapacity.at` sums, from
    counts already read (call authorization reads them in its one query)."""
    return sum(P.included_minutes(sku, kind, country) * seats.get(sku, 0)
               for sku in P.POOL_SKUS.get(kind, ()))


def pool_seats_filter(*, kinds, country: str, at: datetime) -> Q:
    """The license assignments that feed the pools of `kinds` for usage country `country`
    at `at`: the conferencing pool's whatever their usage location, the plans' pools' in
    that country (as PoolCapacity reads them)."""
    skus = {sku for kind in kinds for sku in P.POOL_SKUS.get(kind, ())}
    anywhere = set(P.POOL_SKUS[P.CONFERENCE]) if P.CONFERENCE in kinds else set()
    return (Q(sku__in=skus, assigned_at__lte=at)
            & (Q(removed_at__isnull=True) | Q(removed_at__gt=at))
            & (Q(sku__in=anywhere) | Q(usage_location=country)))


def pool_facts(*, organization, kinds, country: str, at: datetime) -> tuple[dict, dict]:
    """({pool kind: minutes used in `at`'s month}, {SKU: licenses feeding them at `at`})
    for the pools of `kinds` in usage country `country` (upper case; the conferencing pool
    has none), for `pool_left`. Call authorization reads the same facts on PostgreSQL in
    its one query (usage.pg.authorize_read)."""
    if not kinds:
        return {}, {}
    month = month_start(at)
    used = dict(MinutePool.objects.filter(organization=organization, month=month).filter(
        Q(kind=P.CONFERENCE, country="", kind__in=kinds)
        | Q(kind__in=[k for k in kinds if k != P.CONFERENCE], country=country)
    ).values_list("kind", "used_minutes"))
    seats = dict(LicenseAssignment.objects.filter(organization=organization).filter(
        pool_seats_filter(kinds=kinds, country=country, at=at)).values_list("sku").annotate(
        n=Count("id")).values_list("sku", "n"))
    return used, seats


def licenses_at(*, organization, at: datetime, person_ids=None) -> dict[int, frozenset[str]]:
    """person id -> SKUs assigned at instant `at` (assigned_at <= at < removed_at)."""
    qs = LicenseAssignment.objects.filter(organization=organization, assigned_at__lte=at).filter(
        Q(removed_at__isnull=True) | Q(removed_at__gt=at)
    )
    if person_ids is not None:
        qs = qs.filter(person_id__in=list(person_ids))
    out: dict[int, set[str]] = defaultdict(set)
    for person_id, sku in qs.values_list("person_id", "sku"):
        out[person_id].add(sku)
    return {pid: frozenset(skus) for pid, skus in out.items()}


def person_licenses(*, person) -> frozenset[str]:
    return frozenset(
        LicenseAssignment.objects.filter(person=person, removed_at__isnull=True).values_list(
            "sku", flat=True
        )
    )


def person_license_warnings(*, skus) -> list[str]:
    """Codes of what is wrong with a set of licenses (the page explains each)."""
    skus = set(skus)
    warnings = []
    if P.CREDITS in skus and not (skus & (P.CALLING_PLANS | {P.AUDIO_CONFERENCING})):
        warnings.append("credits_unused")
    if skus & P.CALLING_PLANS and P.TEAMS_PHONE not in skus:
        warnings.append("plan_without_phone")
    return warnings


def seat_summary(*, organization) -> list[dict]:
    """One row per catalog product: the subscription's seats and how many are assigned."""
    subs = {s.sku: s for s in Subscription.objects.filter(organization=organization)}
    assigned = dict(
        LicenseAssignment.objects.filter(organization=organization, removed_at__isnull=True)
        .values_list("sku")
        .annotate(n=Count("id"))
        .values_list("sku", "n")
    )
    rows = []
    for sku, product in P.PRODUCTS.items():
        sub = subs.get(sku)
        n = assigned.get(sku, 0)
        seats = None if sub is None else sub.seats
        rows.append(
            {
                "sku": sku,
                "product": product,
                "subscription": sub,
                "assigned": n,
                "seats": seats,
                "unlimited": sub is not None and sub.seats is None,
                "available": None if sub is None or sub.seats is None else max(0, seats - n),
            }
        )
    return rows


SORTS = {
    "name": ("display_name", "id"),
    "-name": ("-display_name", "-id"),
    "upn": ("upn", "id"),
    "-upn": ("-upn", "-id"),
    "location": ("usage_location", "display_name", "id"),
    "-location": ("-usage_location", "-display_name", "-id"),
}


def people_list(*, organization, q: str = "", sku: str = "", role: str = "", sort: str = "name"):
    """The Active users query: search on name/UPN/e-mail, filters by license and role."""
    qs = Person.objects.filter(organization=organization)
    if q:
        qs = qs.filter(
            Q(display_name__icontains=q) | Q(upn__icontains=q) | Q(email__icontains=q)
        )
    if sku == "none":
        qs = qs.exclude(
            Exists(LicenseAssignment.objects.filter(person=OuterRef("pk"), removed_at__isnull=True))
        )
    elif sku:
        qs = qs.filter(
            Exists(
                LicenseAssignment.objects.filter(
                    person=OuterRef("pk"), sku=sku, removed_at__isnull=True
                )
            )
        )
    if role:
        qs = qs.filter(Exists(PersonRole.objects.filter(person=OuterRef("pk"), role=role)))
    return qs.order_by(*SORTS.get(sort, SORTS["name"]))


def active_skus_by_person(person_ids) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    for pid, sku in (
        LicenseAssignment.objects.filter(person_id__in=list(person_ids), removed_at__isnull=True)
        .order_by("sku")
        .values_list("person_id", "sku")
    ):
        out[pid].append(sku)
    return out


def pool_status(*, organization, month: date) -> list[dict]:
    """One row per pool of `month` (those with licenses or with minutes used): kind,
    country, capability, total, used, available, percent. The size is the licenses
    assigned now for the current month, at the month's end for a past month."""

    now = timezone.now()
    end = datetime(next_month(month).year, next_month(month).month, 1, tzinfo=UTC)
    at = min(now, end - timezone.timedelta(microseconds=1))
    # Pools that exist: any with licenses at `at`, plus any with a row for the month.
    keys = set()
    plan_skus = defaultdict(set)
    active = LicenseAssignment.objects.filter(
        Q(removed_at__isnull=True) | Q(removed_at__gt=at),
        organization=organization,
        assigned_at__lte=at,
    )
    for sku, country in active.values_list("sku", "usage_location").distinct():
        for kind, skus in P.POOL_SKUS.items():
            if sku in skus:
                pool_country = "" if kind == P.CONFERENCE else country
                keys.add(PoolKey(kind, pool_country, month))
                plan_skus[(kind, pool_country)].add(sku)
    rows_by_key = {
        PoolKey(p.kind, p.country, p.month): p
        for p in MinutePool.objects.filter(organization=organization, month=month)
    }
    keys |= set(rows_by_key)
    capacity = PoolCapacity(organization, keys) if keys else None
    out = []
    for key in sorted(keys, key=lambda k: (P.POOL_KINDS.index(k.kind), k.country)):
        pool = rows_by_key.get(key)
        total = capacity.at(key, at)
        used = pool.used_minutes if pool else 0
        caps = sorted(plan_skus.get((key.kind, key.country)) or {P.POOL_CAPABILITY[key.kind]})
        out.append(
            {
                "key": key,
                "kind": key.kind,
                "kind_label": P.POOL_KIND_LABELS[key.kind],
                "country": key.country,
                "capability": " / ".join(P.PRODUCTS[s].capability for s in caps),
                "total": total,
                "used": used,
                "available": max(0, total - used),
                "percent": min(100, round(used * 100 / total)) if total else (100 if used else 0),
            }
        )
    return out


def pool_left(*, key: PoolKey, used, seats) -> int:
    """Minutes the pool `key` can still give at the instant `pool_facts` read (its size from
    the licenses held then, less what it gave)."""
    return max(0, pool_size(kind=key.kind, country=key.country, seats=seats)
               - used.get(key.kind, 0))
