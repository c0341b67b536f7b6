"""Reads of Reports > Reconciliation: Microsoft's reported charges beside this system's
rating, per day, per user and per destination country, and the calls that differ most.

Everything but the calls of the "largest differences" list reads the reconciliation rollups
(usage.reconciliation_rollups): the cost follows the days, people and destinations of the
range, not the number of calls. The list reads the per-day top table (at most
`TOP_PER_DAY` rows a day), then those calls by their unique usage id.

Amounts are compared only when Microsoft reported them in the organization's currency;
other currencies, and calls Microsoft reported no charge for, are listed apart with their
own amounts, never converted. The difference is rated - reported: positive when this system
charges more than Microsoft reported.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Max, QuerySet, Sum

from credits.models import Organization, Person
from credits.money import ZERO

from .models import CallRecord, ReconciliationRollup, ReconciliationTopCall, UsagePersonDay
from .models.reconciliation import TOP_PER_DAY
from .report import ReportFilters, filters_from_query

GROUPS = ("day", "user", "destination")
DEFAULT_GROUP = "day"
TOP_LIMIT = 50
assert TOP_LIMIT <= TOP_PER_DAY

_SUMS = dict(calls=Sum("calls"), unrated=Sum("unrated"), reported=Sum("reported_charge"),
             rated=Sum("rated_charge"))


@dataclass
class Sums:
    calls: int = 0
    unrated: int = 0
    reported: Decimal = ZERO  # in the row's currency
    rated: Decimal = ZERO  # in the organization's currency

    @property
    def difference(self) -> Decimal:
        return self.rated - self.reported

    def add(self, other: "Sums") -> None:
        self.calls += other.calls
        self.unrated += other.unrated
        self.reported += other.reported
        self.rated += other.rated


def _sums(row: dict) -> Sums:
    return Sums(row.get("calls") or 0, row.get("unrated") or 0, row.get("reported") or ZERO,
                row.get("rated") or ZERO)


@dataclass
class Group:
    """One row of a grouping: `key` is a date (day), a (person id or None, UPN, name)
    tuple (user) or a country code, "" when unknown (destination). `currency` is the
    reported currency ("" when none was reported)."""

    key: object
    currency: str
    sums: Sums


@dataclass
class Reconciliation:
    """The page (and the workbook) for one range and grouping."""

    filters: ReportFilters
    group: str
    currency: str
    compared: Sums = field(default_factory=Sums)
    rows: list[Group] = field(default_factory=list)  # in the organization's currency
    apart: list[Group] = field(default_factory=list)  # other currencies and not reported
    other_currencies: list[tuple[str, Sums]] = field(default_factory=list)
    not_reported: Sums = field(default_factory=Sums)
    as_of: object = None


def params_from_query(query, *, today: date) -> tuple[ReportFilters, str, dict[str, str]]:
    """(range, grouping, errors) from URL parameters: the PSTN usage report's range and a
    `group` of GROUPS. Unknown values fall back to the defaults and are reported."""
    filters, errors = filters_from_query(
        {k: query.get(k) for k in ("range", "from", "to") if query.get(k) is not None},
        today=today)
    group = query.get("group") or DEFAULT_GROUP
    if group not in GROUPS:
        errors["group"] = "Choose day, user or destination."
        group = DEFAULT_GROUP
    return ReportFilters(start=filters.start, end=filters.end, range=filters.range), group, \
        errors


def _rollups(organization: Organization, filters: ReportFilters) -> QuerySet:
    return ReconciliationRollup.objects.filter(
        organization=organization, day__gte=filters.start, day__lte=filters.end).order_by()


_KEYS = {"day": ("day",), "user": ("person_key", "upn"),
         "destination": ("destination_country",)}


def _people(organization: Organization, ids) -> dict[int, Person]:
    ids = [i for i in ids if i]
    if not ids:
        return {}
    return {p.pk: p for p in Person.objects.filter(organization=organization, pk__in=ids)
            .only("pk", "display_name", "upn")}


def _user_keys(organization: Organization, rows: list[dict]) -> None:
    people = _people(organization, {r["person_key"] for r in rows})
    for row in rows:
        person = people.get(row["person_key"])
        row["key"] = ((person.pk, person.upn, person.display_name) if person
                      else (None, row["upn"], row["upn"]))


def reconciliation_groups(*, organization: Organization, filters: ReportFilters,
                          group: str) -> tuple[list[Group], list[Group]]:
    """(rows in the organization's currency, rows apart) of one grouping. Rows in the
    organization's currency come by day, or by the size of their difference; rows apart by
    key and currency."""
    keys = _KEYS[group]
    rows = list(_rollups(organization, filters).values(*keys, "currency").annotate(**_SUMS))
    if group == "user":
        _user_keys(organization, rows)
    else:
        for row in rows:
            row["key"] = row[keys[0]]
    own = organization.currency
    compared: dict = {}
    apart = []
    for row in rows:
        if row["currency"] == own:
            # One person's calls may be stored under two UPN spellings: one row.
            target = compared.setdefault(row["key"], Group(row["key"], own, Sums()))
            target.sums.add(_sums(row))
        else:
            apart.append(Group(row["key"], row["currency"], _sums(row)))
    compared_rows = list(compared.values())
    if group == "day":
        compared_rows.sort(key=lambda g: g.key)
    else:
        compared_rows.sort(key=lambda g: (-abs(g.sums.difference), str(g.key)))
    apart.sort(key=lambda g: (str(g.key), g.currency))
    return compared_rows, apart


def reconciliation_totals(*, organization: Organization, filters: ReportFilters,
                          group: str = DEFAULT_GROUP) -> Reconciliation:
    """The range's totals by reported currency, without the rows of a grouping."""
    result = Reconciliation(filters=filters, group=group, currency=organization.currency)
    for row in _rollups(organization, filters).values("currency").annotate(**_SUMS):
        sums = _sums(row)
        if row["currency"] == organization.currency:
            result.compared = sums
        elif row["currency"]:
            result.other_currencies.append((row["currency"], sums))
        else:
            result.not_reported = sums
    result.other_currencies.sort()
    result.as_of = UsagePersonDay.objects.filter(
        organization=organization, day__gte=filters.start, day__lte=filters.end,
    ).aggregate(at=Max("updated_at"))["at"]
    return result


def reconciliation_for(*, organization: Organization, filters: ReportFilters,
                       group: str) -> Reconciliation:
    """Totals by currency and the rows of one grouping: three small grouped reads of the
    rollups, whatever the size of the call table."""
    result = reconciliation_totals(organization=organization, filters=filters, group=group)
    result.rows, result.apart = reconciliation_groups(organization=organization,
                                                      filters=filters, group=group)
    return result


def reconciliation_all_rows(*, organization: Organization, filters: ReportFilters
                            ) -> dict[str, tuple[list[Group], list[Group]]]:
    """Every grouping, for the workbook."""
    return {g: reconciliation_groups(organization=organization, filters=filters, group=g)
            for g in GROUPS}


@dataclass
class TopCall:
    call: CallRecord
    difference: Decimal


def reconciliation_top_calls(*, organization: Organization, filters: ReportFilters,
                             limit: int = TOP_LIMIT) -> list[TopCall]:
    """The calls of the range whose |rated - reported| is largest (reported in the
    organization's currency), largest first: at most TOP_PER_DAY rows a day are read."""
    top = list(
        ReconciliationTopCall.objects.filter(
            organization=organization, day__gte=filters.start, day__lte=filters.end)
        .order_by("-gap", "graph_id").values_list("graph_id", "difference")[:limit]
    )
    if not top:
        return []
    calls = {c.graph_id: c for c in CallRecord.objects.filter(
        organization=organization, graph_id__in=[g for g, _d in top])}
    return [TopCall(calls[g], d) for g, d in top if g in calls]
