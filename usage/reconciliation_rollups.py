"""The reconciliation report's rollups (usage.models.reconciliation), kept like the usage
report's (usage.rollups).

`reconciliation_add_calls` runs inside the ingestion transaction, right after the call
records are stored, beside `usage.rollups.rollups_add_calls`. It adds the batch's sums with
`INSERT ... ON CONFLICT DO UPDATE SET calls = calls + excluded.calls`, offers the batch's
largest differences to the per-day top list and trims each touched day back to
`TOP_PER_DAY`. On PostgreSQL, ingestion does the same inside the statement that adds the
usage rollups (`usage.pg.rollups_add_stored`), reading the batch's rows once;
tests/usage/test_reconciliation.py compares the two.

`reconciliation_rebuild` recomputes a range from the call records; `usage.rollups.
rollups_rebuild` calls it under the same lock as the other rollups.

What is compared: Microsoft's reported `Charge` with this system's `charge`. Both include
the connection fee (this system's export writes its connection fee inside Charge, and the
round trip keeps the values), so the reported connection fee is shown, not added.
"""

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import attrgetter

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Abs, RowNumber, TruncDate

from credits.models import Organization
from credits.money import ZERO

from . import pg
from .models import ReconciliationRollup, ReconciliationTopCall
from .models.reconciliation import TOP_PER_DAY

_CHUNK = 200  # rows per INSERT on SQLite: under its limit on bound parameters

_FIELDS = ("start_at", "person_id", "upn", "destination_country", "currency",
           "reported_charge", "charge", "rated", "graph_id")
_KEY = ("organization_id", "day", "person_key", "upn", "destination_country", "currency")
_MEASURES = ("calls", "unrated", "reported_charge", "rated_charge")


def reported_currency(currency: str, reported_charge: Decimal | None) -> str:
    """The currency a call's reported charge is in; "" when Microsoft reported no charge or
    no currency (nothing to compare)."""
    if reported_charge is None or not currency:
        return ""
    return currency.strip().upper()[:3]


def _utc_day(value: datetime) -> date:
    return value.astimezone(UTC).date() if value.tzinfo else value.date()


def _person_key(person_id, upn) -> tuple[int, str]:
    return (person_id or 0, "" if person_id else (upn or "")[:128])


class _Sums:
    __slots__ = ("calls", "unrated", "reported", "rated")

    def __init__(self):
        self.calls = self.unrated = 0
        self.reported = Decimal(0)
        self.rated = ZERO

    def add(self, calls, unrated, reported, rated):
        self.calls += calls
        self.unrated += unrated or 0
        self.reported += reported or 0
        self.rated += rated or ZERO

    def values(self):
        return [self.calls, self.unrated, self.reported, self.rated]


def _upsert(rows: list[list]) -> None:
    if not rows:
        return
    table = ReconciliationRollup._meta.db_table
    columns = (*_KEY, *_MEASURES)
    adds = ", ".join(f"{m} = {table}.{m} + EXCLUDED.{m}" for m in _MEASURES)
    conflict = f"({', '.join(_KEY)}) DO UPDATE SET {adds}"
    if pg.available():
        pg.rollups_upsert(table, columns, conflict, rows)
        return
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), _CHUNK):
            part = rows[offset:offset + _CHUNK]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                + ", ".join([row_sql] * len(part)) + f" ON CONFLICT {conflict}",
                [value for row in part for value in row])


def _trim_top(organization_id: int, days: Iterable[date]) -> None:
    """Keep the TOP_PER_DAY largest gaps of each of `days`, in one statement."""
    days = sorted(set(days))
    if not days:
        return
    table = ReconciliationTopCall._meta.db_table
    marks = ", ".join(["%s"] * len(days))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM ("
            f"SELECT id, ROW_NUMBER() OVER (PARTITION BY day ORDER BY gap DESC, graph_id) "
            f"AS place FROM {table} WHERE organization_id = %s AND day IN ({marks})"
            f") ranked WHERE place > %s)",
            [organization_id, *days, TOP_PER_DAY])


def _add_top(organization: Organization, candidates: dict[date, list]) -> None:
    rows = []
    for day, calls in candidates.items():
        calls.sort(key=lambda c: (-c[1].copy_abs(), c[0]))
        rows.extend(ReconciliationTopCall(organization=organization, day=day, graph_id=g,
                                          difference=d, gap=d.copy_abs())
                    for g, d in calls[:TOP_PER_DAY])
    if rows:
        ReconciliationTopCall.objects.bulk_create(rows, batch_size=500)
        _trim_top(organization.pk, candidates)


def reconciliation_add_calls(*, organization: Organization, records: Sequence) -> None:
    """Add freshly stored calls (CallRecord instances or `CallRecordRow`s) to the
    reconciliation rollups. Call inside the transaction that stored them."""
    if not records:
        return
    own = organization.currency
    sums: dict[tuple, _Sums] = {}
    candidates: dict[date, list] = {}
    fields = attrgetter(*_FIELDS)
    for record in records:
        start, person_id, upn, country, currency, reported, charge, rated, graph_id = \
            fields(record)
        day = _utc_day(start)
        currency = reported_currency(currency, reported)
        key = (day, *_person_key(person_id, upn), country or "", currency)
        target = sums.get(key)
        if target is None:
            target = sums[key] = _Sums()
        target.add(1, 0 if rated else 1, reported, charge)
        if currency == own:
            difference = charge - reported
            if difference:
                candidates.setdefault(day, []).append((graph_id, difference))
    _upsert([[organization.pk, *key, *s.values()] for key, s in sorted(sums.items())])
    _add_top(organization, candidates)


def reconciliation_rebuild(*, organization: Organization, calls: QuerySet,
                           start: date | None, end: date | None) -> None:
    """Recompute the rollups of the UTC days [start, end] (every day when None) from
    `calls`, the organization's call records of those days. The caller holds the credit
    account lock (usage.rollups.rollups_rebuild)."""
    for model in (ReconciliationRollup, ReconciliationTopCall):
        stale = model.objects.filter(organization=organization)
        if start:
            stale = stale.filter(day__gte=start)
        if end:
            stale = stale.filter(day__lte=end)
        stale.delete()
    day = TruncDate("start_at", tzinfo=UTC)
    base = calls.annotate(d=day).order_by()
    currency = Case(When(Q(reported_charge__isnull=True) | Q(currency=""), then=Value("")),
                    default=F("currency"), output_field=CharField())
    sums: dict[tuple, _Sums] = {}
    grouped = base.annotate(rc=currency).values(
        "d", "person_id", "upn", "destination_country", "rc").annotate(
        n=Count("id"), unrated_n=Count("id", filter=Q(rated=False)),
        reported=Sum("reported_charge"), rated_sum=Sum("charge"))
    for row in grouped.iterator():
        key = (row["d"], *_person_key(row["person_id"], row["upn"]),
               row["destination_country"] or "", reported_currency(row["rc"], ZERO))
        sums.setdefault(key, _Sums()).add(row["n"], row["unrated_n"], row["reported"],
                                          row["rated_sum"])
    _upsert([[organization.pk, *key, *s.values()] for key, s in sorted(sums.items())])
    money = DecimalField(max_digits=20, decimal_places=5)
    difference = ExpressionWrapper(F("charge") - F("reported_charge"), output_field=money)
    top = (
        base.filter(currency=organization.currency, reported_charge__isnull=False)
        .annotate(diff=difference).exclude(diff=0)
        .annotate(gap=ExpressionWrapper(Abs(difference), output_field=money))
        .annotate(place=Window(RowNumber(), partition_by=[day],
                               order_by=[F("gap").desc(), F("graph_id").asc()]))
        .filter(place__lte=TOP_PER_DAY)
        .values_list("d", "graph_id", "diff")
    )
    ReconciliationTopCall.objects.bulk_create(
        [ReconciliationTopCall(organization=organization, day=d, graph_id=g, difference=diff,
                               gap=abs(diff)) for d, g, diff in top.iterator()],
        batch_size=500)
