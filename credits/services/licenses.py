"""Writes for subscriptions, license assignments and minute pools.

Seats: every assignment locks its subscription row first (SELECT ... FOR UPDATE), then
counts the active assignments, then writes; two administrators giving away the last seat at
the same moment are serialized by that lock, so a subscription is never oversubscribed.

Pools: a pool row per (organization, kind, usage country, UTC month) holds the minutes used;
its size is computed from the licenses assigned at the instant of each call, so a license
removed today stops counting for calls that start afterwards, and a new month starts from
a new row (the reset on the 1st).
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import products as P
from ..models import LicenseAssignment, MinutePool, Organization, Person, Subscription
from ..platform.events import event_emit
from ..platform.services import Actor, ServiceError, audit_record
from ..products import PoolKey
from ..selectors.licenses import PoolCapacity

__all__ = [
    "PoolKey",
    "LicenseError",
    "subscription_ensure",
    "subscription_ensure_seats",
    "subscription_set_seats",
    "license_assign",
    "license_remove",
    "licenses_set",
    "person_set_usage_location",
    "pool_take_minutes",
    "pools_take_minutes",
    "pool_key_for",
    "month_of",
]


class LicenseError(ServiceError):
    """A license rule refused the change. `code` is one of: unknown_product, no_subscription,
    no_seat, missing_teams_phone, no_usage_location, other_calling_plan, plan_needs_phone,
    below_assigned, plan_assigned."""


def _product_or_error(sku: str):
    product = P.product(sku)
    if product is None:
        raise LicenseError(
            _("Unknown product: %(sku)s") % {"sku": sku}, field="sku", code="unknown_product"
        )
    return product


# --- subscriptions -----------------------------------------------------------------------


@transaction.atomic
def subscription_ensure(*, organization: Organization, sku: str, actor) -> Subscription:
    """The organization's subscription for `sku`, created when missing (idempotent).
    Communications Credits is unlimited; other products start with 0 seats."""
    product = _product_or_error(sku)
    sub = (
        Subscription.objects.select_for_update(of=("self",), no_key=True)
        .filter(organization=organization, sku=product.sku)
        .first()
    )
    if sub is not None:
        return sub
    try:
        with transaction.atomic():
            sub = Subscription.objects.create(
                organization=organization, sku=product.sku,
                seats=None if product.unlimited else 0,
            )
            audit_record(organization=organization, actor=Actor.coerce(actor),
                         action="subscription.create", target=sub,
                         changes={"sku": sub.sku, "seats": sub.seats})
    except IntegrityError:  # created by a concurrent transaction meanwhile
        sub = Subscription.objects.select_for_update(of=("self",), no_key=True).get(
            organization=organization, sku=product.sku
        )
    return sub


def _assigned_count(sub: Subscription) -> int:
    return LicenseAssignment.objects.filter(subscription=sub, removed_at__isnull=True).count()


@transaction.atomic
def subscription_ensure_seats(
    *, organization: Organization, sku: str, seats: int, actor
) -> Subscription:
    """Grow the subscription to at least `seats` seats (never shrinks); for imports."""
    sub = subscription_ensure(organization=organization, sku=sku, actor=actor)
    if sub.seats is not None and sub.seats < seats:
        before = sub.seats
        sub.seats = seats
        sub.save(update_fields=["seats"])
        audit_record(organization=organization, actor=Actor.coerce(actor),
                     action="subscription.seats", target=sub,
                     changes={"seats": {"from": before, "to": seats}})
    return sub


@transaction.atomic
def subscription_set_seats(*, subscription: Subscription, seats: int, actor) -> Subscription:
    """A billing administrator changes the purchased seats; never below those assigned."""
    sub = Subscription.objects.select_for_update(of=("self",), no_key=True).get(pk=subscription.pk)
    if sub.unlimited:
        raise LicenseError(_("This product has no seat limit."), field="seats", code="unlimited")
    if seats < 0:
        raise LicenseError(_("Enter 0 or more seats."), field="seats", code="invalid")
    assigned = _assigned_count(sub)
    if seats < assigned:
        raise LicenseError(
            _("%(assigned)s seats are assigned; remove licenses before going below that.")
            % {"assigned": assigned},
            field="seats",
            code="below_assigned",
        )
    if seats != sub.seats:
        before = sub.seats
        sub.seats = seats
        sub.save(update_fields=["seats"])
        audit_record(organization=sub.organization, actor=Actor.coerce(actor),
                     action="subscription.seats", target=sub,
                     changes={"seats": {"from": before, "to": seats}})
    return sub


# --- assignments -------------------------------------------------------------------------


def _active_skus(person: Person) -> set[str]:
    return set(
        LicenseAssignment.objects.filter(person=person, removed_at__isnull=True).values_list(
            "sku", flat=True
        )
    )


@transaction.atomic
def license_assign(
    *, person: Person, sku: str, actor, grow_seats: bool = False
) -> LicenseAssignment:
    """Assign a product to a person (idempotent: an active assignment is returned as is).

    Communications Credits is created on demand and never runs out. Other products need a
    subscription with a free seat (`grow_seats` lets an import buy the missing seat, as
    `import_people` promises). Calling plans need Teams Phone and a usage location, and a
    person holds one calling plan at a time (the pools count each person once)."""
    product = _product_or_error(sku)
    organization = person.organization
    actor = Actor.coerce(actor)
    # Lock the person row too: two concurrent calls for the same person (e.g. a plan and a
    # Teams Phone removal) must see each other's result.
    person = Person.objects.select_for_update(of=("self",), no_key=True).get(pk=person.pk)
    if product.unlimited or grow_seats:
        subscription_ensure(organization=organization, sku=product.sku, actor=actor)
    sub = (
        Subscription.objects.select_for_update(of=("self",), no_key=True)
        .filter(organization=organization, sku=product.sku)
        .first()
    )
    if sub is None:
        raise LicenseError(
            _("Your organization has no subscription for %(product)s.")
            % {"product": product.name},
            field="sku",
            code="no_subscription",
        )
    existing = LicenseAssignment.objects.filter(
        person=person, sku=product.sku, removed_at__isnull=True
    ).first()
    if existing is not None:
        return existing
    held = _active_skus(person)
    if product.calling_plan:
        if not person.usage_location:
            raise LicenseError(
                _("Set a usage location before assigning a calling plan."),
                field="usage_location",
                code="no_usage_location",
            )
        if P.TEAMS_PHONE not in held:
            raise LicenseError(
                _("A calling plan needs Teams Phone Standard; assign it first."),
                field="sku",
                code="missing_teams_phone",
            )
        other = held & P.CALLING_PLANS
        if other:
            raise LicenseError(
                _("This person already has %(plan)s; remove it first.")
                % {"plan": P.PRODUCTS[sorted(other)[0]].name},
                field="sku",
                code="other_calling_plan",
            )
    if sub.seats is not None:
        assigned = _assigned_count(sub)
        if assigned >= sub.seats:
            if not grow_seats:
                raise LicenseError(
                    _("No %(product)s seat left (%(assigned)s of %(seats)s assigned).")
                    % {"product": product.name, "assigned": assigned, "seats": sub.seats},
                    field="sku",
                    code="no_seat",
                )
            before = sub.seats
            sub.seats = assigned + 1
            sub.save(update_fields=["seats"])
            audit_record(organization=organization, actor=actor, action="subscription.seats",
                         target=sub, changes={"seats": {"from": before, "to": sub.seats}})
    assignment = LicenseAssignment.objects.create(
        organization=organization,
        subscription=sub,
        person=person,
        sku=product.sku,
        usage_location=person.usage_location,
        assigned_at=timezone.now(),
        assigned_by=actor.label[:200],
    )
    audit_record(organization=organization, actor=actor, action="license.assign",
                 target=person, changes={"sku": product.sku})
    return assignment


@transaction.atomic
def license_remove(*, person: Person, sku: str, actor) -> None:
    """Remove a product from a person; calls that start afterwards no longer see it.
    Removing a license the person does not hold is a no-op."""
    product = _product_or_error(sku)
    actor = Actor.coerce(actor)
    person = Person.objects.select_for_update(of=("self",), no_key=True).get(pk=person.pk)
    assignment = (
        LicenseAssignment.objects.select_for_update(of=("self",), no_key=True)
        .filter(person=person, sku=product.sku, removed_at__isnull=True)
        .first()
    )
    if assignment is None:
        return
    if product.sku == P.TEAMS_PHONE:
        plans = _active_skus(person) & P.CALLING_PLANS
        if plans:
            raise LicenseError(
                _("Remove the calling plan (%(plan)s) before Teams Phone Standard.")
                % {"plan": P.PRODUCTS[sorted(plans)[0]].name},
                field="sku",
                code="plan_needs_phone",
            )
    assignment.removed_at = timezone.now()
    assignment.removed_by = actor.label[:200]
    assignment.save(update_fields=["removed_at", "removed_by"])
    audit_record(organization=person.organization, actor=actor, action="license.remove",
                 target=person, changes={"sku": product.sku})


@transaction.atomic
def licenses_set(*, person: Person, skus, actor) -> tuple[list[str], list[str]]:
    """Make the person's licenses exactly `skus` (the Licenses and apps page): removals
    first (plans before Teams Phone), then additions (Teams Phone before plans). All or
    nothing. Returns (added, removed)."""
    wanted = {P.product(s).sku if P.product(s) else s for s in skus}
    for sku in wanted:
        _product_or_error(sku)
    held = _active_skus(person)
    order = {sku: i for i, sku in enumerate(P.SKUS)}
    # Calling plans come after Teams Phone in the catalog, so additions in catalog order
    # and removals in reverse catalog order satisfy the dependency.
    to_remove = sorted(held - wanted, key=lambda s: -order.get(s, 0))
    to_add = sorted(wanted - held, key=lambda s: order.get(s, 0))
    for sku in to_remove:
        license_remove(person=person, sku=sku, actor=actor)
    for sku in to_add:
        license_assign(person=person, sku=sku, actor=actor)
    return to_add, to_remove


@transaction.atomic
def person_set_usage_location(*, person: Person, country: str, actor) -> Person:
    """Set where a person uses the service (the pool country of their calling plan)."""
    country = (country or "").strip().upper()
    actor = Actor.coerce(actor)
    person = Person.objects.select_for_update(of=("self",), no_key=True).get(pk=person.pk)
    if country == person.usage_location:
        return person
    if country and (len(country) != 2 or not country.isalpha()):
        raise LicenseError(_("Choose a country."), field="usage_location", code="invalid")
    plans = _active_skus(person) & P.CALLING_PLANS
    if plans:
        # The plan's minutes belong to the pool of the country it was assigned in.
        raise LicenseError(
            _("Remove the calling plan before changing the usage location."),
            field="usage_location",
            code="plan_assigned",
        )
    before = person.usage_location
    person.usage_location = country
    person.save(update_fields=["usage_location"])
    audit_record(organization=person.organization, actor=actor, action="person.usage_location",
                 target=person, changes={"usage_location": {"from": before, "to": country}})
    return person


# --- minute pools ------------------------------------------------------------------------


def month_of(at: datetime) -> date:
    at = at.astimezone(UTC) if timezone.is_aware(at) else at
    return date(at.year, at.month, 1)


def pool_key_for(*, kind: str, country: str, at: datetime) -> PoolKey:
    return PoolKey(kind=kind, country="" if kind == P.CONFERENCE else country.upper(),
                   month=month_of(at))


def _pool_label(key: PoolKey) -> str:
    label = str(P.POOL_KIND_LABELS.get(key.kind, key.kind))
    return f"{label} {key.country}" if key.country else label


def _lock_pools(organization, keys) -> dict[PoolKey, MinutePool]:
    keys = sorted(set(keys), key=lambda k: (k.month, k.kind, k.country))
    for key in keys:
        if key.kind not in P.POOL_KINDS:
            raise ValueError(f"unknown pool kind {key.kind!r}")
    pools = _select_pools_for_update(organization, keys)
    missing = [k for k in keys if k not in pools]
    if missing:
        # A month's first calls create its pools; every later batch finds them and skips
        # this insert (a round trip per ingestion batch).
        MinutePool.objects.bulk_create(
            [MinutePool(organization=organization, kind=k.kind, country=k.country,
                        month=k.month) for k in missing],
            ignore_conflicts=True,
        )
        pools = _select_pools_for_update(organization, keys)
    return pools


def _select_pools_for_update(organization, keys) -> dict[PoolKey, MinutePool]:
    q = Q()
    for k in keys:
        q |= Q(kind=k.kind, country=k.country, month=k.month)
    # One statement, rows locked in a stable order: two batches touching the same pools
    # queue behind each other instead of deadlocking.
    pools = (
        MinutePool.objects.select_for_update(of=("self",), no_key=True)
        .filter(q, organization=organization)
        .order_by("month", "kind", "country")
    )
    return {PoolKey(p.kind, p.country, p.month): p for p in pools}


def _alert(organization, pool: MinutePool, key: PoolKey, level: int, total: int,
           at: datetime) -> None:
    name = f"pool_{level}"
    event_emit(
        organization=organization,
        name=name,
        payload={
            "pool": _pool_label(key),
            "kind": key.kind,
            "country": key.country,
            "month": key.month.strftime("%Y-%m"),
            "used": pool.used_minutes,
            "total": total,
            "left": max(0, total - pool.used_minutes),
        },
        dedupe_key=f"{name}:{organization.pk}:{key.kind}:{key.country or '-'}:{key.month:%Y-%m}",
        # When the call that crossed the level started: in the pool's own month, however
        # late its calls arrive.
        occurred_at=at,
    )


@transaction.atomic
def pools_take_minutes(
    *, organization: Organization, requests: Sequence[tuple[PoolKey, int, datetime]]
) -> list[int]:
    """Take minutes for many calls at once: each distinct pool locked once (in a stable
    order), requests served in the given order; returns the minutes given per request."""
    if not requests:
        return []
    keys = {key for key, _m, _at in requests}
    pools = _lock_pools(organization, keys)
    capacity = PoolCapacity(organization, keys)
    given_all: list[int] = []
    touched: dict[PoolKey, int] = {}
    for key, minutes, at in requests:
        if minutes < 0:
            raise ValueError("minutes must be >= 0")
        pool = pools[key]
        total = capacity.at(key, at)
        given = max(0, min(minutes, total - pool.used_minutes))
        given_all.append(given)
        touched[key] = total
        if given:
            pool.used_minutes += given
        if total > 0:
            if not pool.alerted_80 and pool.used_minutes * 100 >= total * 80:
                pool.alerted_80 = True
                _alert(organization, pool, key, 80, total, at)
            if not pool.alerted_100 and pool.used_minutes >= total:
                pool.alerted_100 = True
                _alert(organization, pool, key, 100, total, at)
    now = timezone.now()
    changed = []
    for key, total in touched.items():
        pool = pools[key]
        pool.total_minutes = total
        pool.updated_at = now
        changed.append(pool)
    # One hand-written UPDATE per pool sent with executemany (pipelined by psycopg: one
    # round trip for them all); bulk_update's CASE expressions cost more to build than
    # the writes.
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {MinutePool._meta.db_table} SET used_minutes = %s, total_minutes = %s, "
            "alerted_80 = %s, alerted_100 = %s, updated_at = %s WHERE id = %s",
            [(p.used_minutes, p.total_minutes, p.alerted_80, p.alerted_100, now, p.pk)
             for p in changed],
        )
    return given_all


def pool_take_minutes(
    *, organization: Organization, key: PoolKey, minutes: int, at: datetime
) -> int:
    """Take up to `minutes` from the pool `key` for a call that started at `at`; returns the
    minutes given (0..minutes). Atomic, with the pool row locked."""
    return pools_take_minutes(organization=organization, requests=[(key, minutes, at)])[0]
