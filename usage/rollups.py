"""Daily rollups of the call records, the report's source for tiles, charts and top lists.

`rollups_add_calls` runs inside the ingestion transaction, right after the call records are
stored: the sums move with the calls or not at all. Rows are added with
`INSERT ... ON CONFLICT DO UPDATE SET calls = calls + excluded.calls` (PostgreSQL and SQLite
alike), so two batches touching the same day add up instead of overwriting each other;
batches of one organization are serialized anyway by the ingestion's credit account lock.
On PostgreSQL, ingestion adds the same sums with `usage.pg.rollups_add_stored` instead.

`rollups_rebuild` recomputes a range from the call records (repair, or after a bulk load
that bypassed ingestion); it takes the same lock so it cannot interleave with an ingestion.
It rebuilds the reconciliation report's rollups too (usage.reconciliation_rollups).
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter

from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from credits.models import Organization
from credits.money import ZERO
from credits.services.ledger import credit_account_lock

from . import pg
from .models import CallRecord, UsageDestinationRollup, UsagePersonDay, UsageRollup
from .reconciliation_rollups import reconciliation_rebuild

_CONTEXTS = {"domestic": "domestic", "international": "international"}

# The CallRecord fields a rollup reads, by name.
_FIELDS = ("start_at", "person_id", "upn", "user_display_name", "call_type",
           "destination_context", "destination_name", "charged_to", "capability",
           "duration_s", "billable_seconds", "credit_seconds", "pool_minutes", "charge")


def normalize_context(value: str) -> str:
    """'Domestic' / 'International' (any case) -> 'domestic' / 'international'; else ''."""
    return _CONTEXTS.get((value or "").strip().lower(), "")


def _utc_day(value: datetime) -> date:
    return value.astimezone(UTC).date() if value.tzinfo else value.date()


class _Sums:
    __slots__ = ("calls", "duration", "billable", "credit", "pool", "charge", "name",
                 "name_at")

    def __init__(self):
        self.calls = self.duration = self.billable = self.credit = self.pool = 0
        self.charge = ZERO
        self.name = ""
        self.name_at = -1  # the position of the row that gave the name, in the batch

    def add(self, calls, duration, billable, credit, pool, charge, name="", at=0):
        self.calls += calls
        self.duration += duration or 0
        self.billable += billable or 0
        self.credit += credit or 0
        self.pool += pool or 0
        self.charge += charge or ZERO
        if name and at >= self.name_at:
            self.name, self.name_at = name, at

    def values(self):
        return [self.calls, self.duration, self.billable, self.credit, self.pool, self.charge]


def _person_key(person_id, upn):
    return (person_id or 0, "" if person_id else (upn or "")[:128])


def _group(rows: Iterable[tuple]) -> tuple[dict, dict]:
    """Rows of (_FIELDS...) -> (person rollup sums, destination rollup sums) by key."""
    people: dict[tuple, _Sums] = {}
    places: dict[tuple, _Sums] = {}
    for at, (start, person_id, upn, name, call_type, context, destination, charged_to,
             capability, duration, billable, credit, pool, charge) in enumerate(rows):
        day = _utc_day(start)
        context = normalize_context(context)
        charged_to = charged_to or ""
        capability = capability or ""
        key = (day, *_person_key(person_id, upn), call_type, context, charged_to, capability)
        sums = people.get(key)
        if sums is None:
            sums = people[key] = _Sums()
        sums.add(1, duration, billable, credit, pool, charge, name or "", at)
        key = (day, (destination or "")[:100], call_type, context, charged_to, capability)
        sums = places.get(key)
        if sums is None:
            sums = places[key] = _Sums()
        sums.add(1, duration, billable, credit, pool, charge)
    return people, places


_MEASURES = ("calls", "duration_s", "billable_s", "credit_s", "pool_minutes", "charge")
_PERSON_KEY = ("organization_id", "day", "person_key", "upn", "call_type", "context",
               "charged_to", "capability")
_PLACE_KEY = ("organization_id", "day", "destination", "call_type", "context", "charged_to",
              "capability")
_CHUNK = 200  # rows per INSERT: well under SQLite's limit on bound parameters


def _upsert(table: str, key: tuple, extra: tuple, rows: list[list], update_extra: str) -> None:
    columns = (*key, *extra, *_MEASURES)
    adds = ", ".join(f"{m} = {table}.{m} + EXCLUDED.{m}" for m in _MEASURES)
    if not rows:
        return
    conflict = f"({', '.join(key)}) DO UPDATE SET {adds}{update_extra}"
    if pg.available():
        pg.rollups_upsert(table, columns, conflict, rows)
        return
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), _CHUNK):
            part = rows[offset:offset + _CHUNK]
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                + ", ".join([row_sql] * len(part))
                + f" ON CONFLICT {conflict}"
            )
            cursor.execute(sql, [value for row in part for value in row])


def _person_days(people: dict) -> dict:
    """The full person rollup collapsed to (day, person_key, upn). The name is the one of
    the day's latest call that had one, as the database computes it (usage.pg)."""
    days: dict[tuple, _Sums] = {}
    for key, sums in people.items():
        target = days.get(key[:3])
        if target is None:
            target = days[key[:3]] = _Sums()
        target.add(*sums.values(), sums.name, sums.name_at)
    return days


def _name_update(table: str) -> str:
    return (f", updated_at = EXCLUDED.updated_at, user_name = CASE WHEN EXCLUDED.user_name "
            f"<> '' THEN EXCLUDED.user_name ELSE {table}.user_name END")


def _write_added(organization_id: int, people: dict, places: dict) -> None:
    now = timezone.now()
    for model, key, rows in (
        (UsageRollup, _PERSON_KEY, people),
        (UsagePersonDay, ("organization_id", "day", "person_key", "upn"), _person_days(people)),
    ):
        table = model._meta.db_table
        _upsert(
            table, key, ("user_name", "updated_at"),
            [[organization_id, *k, sums.name[:128], now, *sums.values()]
             for k, sums in sorted(rows.items())],
            _name_update(table),
        )
    _upsert(
        UsageDestinationRollup._meta.db_table, _PLACE_KEY, (),
        [[organization_id, *key, *sums.values()] for key, sums in sorted(places.items())],
        "",
    )


def rollups_add_calls(*, organization: Organization, records: Sequence) -> None:
    """Add freshly stored calls to the rollups. Call inside the transaction that stored them.

    `records` are CallRecord instances or the ingestion's `CallRecordRow`s (no model
    instance is built per call): both are read by field name."""
    if not records:
        return
    fields = attrgetter(*_FIELDS)
    people, places = _group(fields(r) for r in records)
    _write_added(organization.pk, people, places)


def _day_bounds(start: date | None, end: date | None):
    lower = datetime.combine(start, time.min, tzinfo=UTC) if start else None
    upper = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None
    return lower, upper


def rollups_rebuild(*, organization: Organization, start: date | None = None,
                    end: date | None = None) -> int:
    """Recompute the rollups of the UTC days [start, end] (every day when None) from the call
    records; returns the number of calls summed. Serialized with ingestion by the credit
    account lock, so no batch lands between the delete and the insert."""
    lower, upper = _day_bounds(start, end)
    with transaction.atomic():
        credit_account_lock(organization=organization)
        calls = CallRecord.objects.filter(organization=organization)
        if lower:
            calls = calls.filter(start_at__gte=lower)
        if upper:
            calls = calls.filter(start_at__lt=upper)
        for model in (UsageRollup, UsagePersonDay, UsageDestinationRollup):
            stale = model.objects.filter(organization=organization)
            if start:
                stale = stale.filter(day__gte=start)
            if end:
                stale = stale.filter(day__lte=end)
            stale.delete()
        # The database groups (one row per combination), Python only normalizes and merges.
        sums = dict(calls=Count("id"), duration=Sum("duration_s"),
                    billable=Sum("billable_seconds"), credit=Sum("credit_seconds"),
                    pool=Sum("pool_minutes"), charge=Sum("charge"))
        base = calls.annotate(d=TruncDate("start_at", tzinfo=UTC)).order_by()
        people: dict[tuple, _Sums] = {}
        total = 0
        for row in base.values("d", "person_id", "upn", "call_type", "destination_context",
                               "charged_to", "capability").annotate(
                                   name=Max("user_display_name"), **sums).iterator():
            key = (row["d"], *_person_key(row["person_id"], row["upn"]), row["call_type"],
                   normalize_context(row["destination_context"]), row["charged_to"] or "",
                   row["capability"] or "")
            people.setdefault(key, _Sums()).add(
                row["calls"], row["duration"], row["billable"], row["credit"], row["pool"],
                row["charge"], row["name"] or "")
            total += row["calls"]
        places: dict[tuple, _Sums] = {}
        for row in base.values("d", "destination_name", "call_type", "destination_context",
                               "charged_to", "capability").annotate(**sums).iterator():
            key = (row["d"], (row["destination_name"] or "")[:100], row["call_type"],
                   normalize_context(row["destination_context"]), row["charged_to"] or "",
                   row["capability"] or "")
            places.setdefault(key, _Sums()).add(
                row["calls"], row["duration"], row["billable"], row["credit"], row["pool"],
                row["charge"])
        _write_added(organization.pk, people, places)
        reconciliation_rebuild(organization=organization, calls=calls, start=start, end=end)
    return total
