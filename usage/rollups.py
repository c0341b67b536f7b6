"""Daily rollups of the call records, the report's source for tiles, charts and top lists.

`rollups_add_calls` runs inside the ingestion transaction, right after the call records are
stored: the sums move with the calls or not at all. Rows are added with
`INSERT ... ON CONFLICT DO UPDATE SET calls = calls + excluded.calls` (PostgreSQL and SQLite
alike), so two batches touching the same day add up instead of overwriting each other;
batches of one organization are serialized anyway by the ingestion's credit account lock.

`rollups_rebuild` recomputes a range from the call records (repair, or after a bulk load
that bypassed ingestion); it takes the same lock so it cannot interleave with an ingestion.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter

from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from credits.db import pg_text_array
from credits.models import Organization
from credits.money import ZERO
from credits.services.ledger import credit_account_lock

from .models import CallRecord, UsageDestinationRollup, UsagePersonDay, UsageRollup

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
    __slots__ = ("calls", "duration", "billable", "credit", "pool", "charge", "name")

    def __init__(self):
        self.calls = self.duration = self.billable = self.credit = self.pool = 0
        self.charge = ZERO
        self.name = ""

    def add(self, calls, duration, billable, credit, pool, charge, name=""):
        self.calls += calls
        self.duration += duration or 0
        self.billable += billable or 0
        self.credit += credit or 0
        self.pool += pool or 0
        self.charge += charge or ZERO
        if name:
            self.name = name

    def values(self):
        return [self.calls, self.duration, self.billable, self.credit, self.pool, self.charge]


def _person_key(person_id, upn):
    return (person_id or 0, "" if person_id else (upn or "")[:128])


def _group(rows: Iterable[tuple]) -> tuple[dict, dict]:
    """Rows of (_FIELDS...) -> (person rollup sums, destination rollup sums) by key."""
    people: dict[tuple, _Sums] = {}
    places: dict[tuple, _Sums] = {}
    for (start, person_id, upn, name, call_type, context, destination, charged_to, capability,
         duration, billable, credit, pool, charge) in rows:
        day = _utc_day(start)
        context = normalize_context(context)
        charged_to = charged_to or ""
        capability = capability or ""
        key = (day, *_person_key(person_id, upn), call_type, context, charged_to, capability)
        sums = people.get(key)
        if sums is None:
            sums = people[key] = _Sums()
        sums.add(1, duration, billable, credit, pool, charge, name or "")
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


# PostgreSQL types of the rollup columns, for the one-statement `unnest` upsert.
_PG_TYPES = {"organization_id": "integer", "day": "date", "person_key": "bigint",
             "updated_at": "timestamptz", "calls": "integer", "duration_s": "bigint",
             "billable_s": "bigint", "credit_s": "bigint", "pool_minutes": "bigint",
             "charge": "numeric"}


def _upsert(table: str, key: tuple, extra: tuple, rows: list[list], update_extra: str) -> None:
    columns = (*key, *extra, *_MEASURES)
    adds = ", ".join(f"{m} = {table}.{m} + EXCLUDED.{m}" for m in _MEASURES)
    if not rows:
        return
    if connection.vendor == "postgresql":
        # One statement with one array per column: the query text is the same for every
        # batch and short, so neither psycopg nor the server parses thousands of
        # placeholders (a VALUES list of 200 rows x 16 columns cost more than the insert).
        arrays = ", ".join(f"%s::{_PG_TYPES.get(c, 'text')}[]" for c in columns)
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
               f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {adds}{update_extra}")
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(values) for values in zip(*rows, strict=True)])
        return
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), _CHUNK):
            part = rows[offset:offset + _CHUNK]
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                + ", ".join([row_sql] * len(part))
                + f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {adds}{update_extra}"
            )
            cursor.execute(sql, [value for row in part for value in row])


def _person_days(people: dict) -> dict:
    """The full person rollup collapsed to (day, person_key, upn)."""
    days: dict[tuple, _Sums] = {}
    for key, sums in people.items():
        target = days.get(key[:3])
        if target is None:
            target = days[key[:3]] = _Sums()
        target.add(*sums.values(), sums.name)
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


def rollups_add_stored(*, organization: Organization, graph_ids: Sequence[str]) -> None:
    """PostgreSQL: add the calls just stored with these ids (in this transaction) to the
    rollups, grouped by the database in one statement (the same sums as
    `rollups_add_calls`, without shipping the rows back and forth or grouping in Python).
    The name kept is the latest non-empty display name of the batch's calls."""
    if not graph_ids:
        return
    calls = CallRecord._meta.db_table
    measures = ", ".join(_MEASURES)
    sums = ("count(*), sum(duration_s), sum(billable_seconds), sum(credit_seconds), "
            "sum(pool_minutes), sum(charge)")
    adds = {t: ", ".join(f"{m} = {t}.{m} + EXCLUDED.{m}" for m in _MEASURES)
            for t in (UsageRollup._meta.db_table, UsagePersonDay._meta.db_table,
                      UsageDestinationRollup._meta.db_table)}
    name = "COALESCE((array_agg(name ORDER BY id DESC) FILTER (WHERE name <> ''))[1], '')"
    person_key = "day, person_key, upn, call_type, context, charged_to, capability"
    place_key = "day, destination, call_type, context, charged_to, capability"
    rollup, person_day, place = (UsageRollup._meta.db_table, UsagePersonDay._meta.db_table,
                                 UsageDestinationRollup._meta.db_table)
    sql = f"""
    WITH c AS MATERIALIZED (
        SELECT id, (start_at AT TIME ZONE 'UTC')::date AS day,
               COALESCE(person_id, 0) AS person_key,
               CASE WHEN person_id IS NULL THEN left(upn, 128) ELSE '' END AS upn,
               user_display_name AS name, call_type,
               CASE lower(btrim(destination_context))
                   WHEN 'domestic' THEN 'domestic'
                   WHEN 'international' THEN 'international' ELSE '' END AS context,
               left(destination_name, 100) AS destination, charged_to, capability,
               duration_s, billable_seconds, credit_seconds, pool_minutes, charge
        FROM {calls} WHERE organization_id = %s AND graph_id = ANY(%s::text[])
    ), r1 AS (
        INSERT INTO {rollup} (organization_id, {person_key}, user_name, updated_at,
                              {measures})
        SELECT %s, {person_key}, left({name}, 128), %s, {sums}
        FROM c GROUP BY {person_key} ORDER BY {person_key}
        ON CONFLICT (organization_id, {person_key}) DO UPDATE SET {adds[rollup]}
            {_name_update(rollup)}
    ), r2 AS (
        INSERT INTO {person_day} (organization_id, day, person_key, upn, user_name,
                                  updated_at, {measures})
        SELECT %s, day, person_key, upn, left({name}, 128), %s, {sums}
        FROM c GROUP BY day, person_key, upn ORDER BY day, person_key, upn
        ON CONFLICT (organization_id, day, person_key, upn) DO UPDATE SET
            {adds[person_day]} {_name_update(person_day)}
    )
    INSERT INTO {place} (organization_id, {place_key}, {measures})
    SELECT %s, {place_key}, {sums} FROM c GROUP BY {place_key} ORDER BY {place_key}
    ON CONFLICT (organization_id, {place_key}) DO UPDATE SET {adds[place]}
    """
    now = timezone.now()
    org = organization.pk
    with connection.cursor() as cursor:
        # The ids as one array literal: psycopg renders a list element by element, slowly.
        cursor.execute(sql, [org, pg_text_array(graph_ids), org, now, org, now, org])


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
    return total
