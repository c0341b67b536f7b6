"""Reads of the PSTN usage report (DESIGN.md section 9); every one is scoped by organization.

Tiles, charts and top lists read the daily rollups (usage.rollups), so their cost follows
the number of days, people and destinations, not the number of calls. The table reads the
call records a page at a time with keyset paging on (sort column, id): each page is an
index range, however deep.
"""

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from credits.models import Organization, Person
from credits.money import CENT, ZERO
from credits.platform.text import text_problem
from credits.selectors.spend_limits import people_spend

from . import cursors, rating
from .models import CallRecord, ChargedTo, UsageDestinationRollup, UsagePersonDay, UsageRollup

RANGES = ("7", "28", "90", "custom")
DEFAULT_RANGE = "28"
MAX_CUSTOM_DAYS = 366
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)
CONTEXTS = ("domestic", "international")
CHARGED_TO = (rating.PLAN_POOL, rating.CONFERENCE_POOL, rating.CREDITS, rating.FREE)
# domain/capabilities.csv, plus this system's own codes.
CAPABILITIES = (
    "MCOPSTNPP", "MCOPSTN1", "MCOPSTN2", "MCOPSTN5", "MCOPSTN6", "MCOPSTN8", "MCOPSTN9",
    "MCOPSTNU", "MCOPSTNCAP", "MCOEV", "MCOEV_VIRTUALUSER", "MCOMEETADD",
    "MCOMEETADD_DIALOUT_US", "MCOMEETACPEA", "FREECALL",
)
CALL_TYPES = rating.CALL_TYPE_ORDER
LIMIT_FILTERS = ("near", "over")
PAGE_SIZE = 50
USER_MATCH_LIMIT = 500


@dataclass(frozen=True)
class ReportFilters:
    """A report's range (UTC days, both inclusive) and filters; also what an export keeps."""

    start: date
    end: date
    range: str = DEFAULT_RANGE
    user: str = ""
    call_type: str = ""
    context: str = ""
    charged_to: str = ""
    capability: str = ""
    # "near": the people at 80 % or more of their monthly credits limit this month (over
    # included); "over": at 100 % or more (credits.spend_limits).
    limit: str = ""

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def end_before(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def as_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ReportFilters":
        return cls(**{**data, "start": date.fromisoformat(data["start"]),
                      "end": date.fromisoformat(data["end"])})

    def query(self, **changes) -> dict[str, str]:
        """The URL parameters of this view (with `changes`), empty ones left out."""
        params = {"range": self.range, "user": self.user, "call_type": self.call_type,
                  "context": self.context, "charged_to": self.charged_to,
                  "capability": self.capability, "limit": self.limit}
        if self.range == "custom":
            params["from"] = self.start.isoformat()
            params["to"] = self.end.isoformat()
        params.update(changes)
        return {k: v for k, v in params.items() if v}

    def described(self) -> dict[str, str]:
        """Filters that are set, for the Parameters sheet and parameters.json."""
        return {k: v for k, v in (("user", self.user), ("call_type", self.call_type),
                                  ("context", self.context), ("charged_to", self.charged_to),
                                  ("capability", self.capability),
                                  ("limit", self.limit)) if v}


QUERY_TEXT_MAX = 200


def query_text(query, name: str, *, max_length: int = QUERY_TEXT_MAX) -> tuple[str, bool]:
    """The text parameter `name` of a GET or POST QueryDict (or a dict), stripped and cut to
    `max_length`, and whether it was usable: ("", False) when it holds a character that
    cannot reach the database (a NUL, which PostgreSQL refuses even in a search, or a lone
    surrogate). Every report, export and rates parameter is read here."""
    value = query.get(name)
    if not isinstance(value, str):
        return "", value is None
    if text_problem(value):
        return "", False
    return value.strip()[:max_length], True


def filters_from_query(query, *, today: date) -> tuple[ReportFilters, dict[str, str]]:
    """The report's filters from URL parameters. Unknown values are dropped and reported in
    the errors dict (field -> message); the page still shows the default for that field."""
    errors: dict[str, str] = {}

    def get(name: str) -> str:
        value, usable = query_text(query, name)
        if not usable:
            errors[name] = _("Contains a character that is not allowed.")
        return value

    kind = get("range") or DEFAULT_RANGE
    if kind not in RANGES:
        errors["range"] = "Choose 7, 28 or 90 days, or a custom range."
        kind = DEFAULT_RANGE
    start = end = None
    if kind == "custom":
        try:
            start = date.fromisoformat(get("from") or "")
        except ValueError:
            errors["from"] = "Enter a start date (YYYY-MM-DD)."
        try:
            end = date.fromisoformat(get("to") or "")
        except ValueError:
            errors["to"] = "Enter an end date (YYYY-MM-DD)."
        for name, value in (("from", start), ("to", end)):
            if value and not (EARLIEST <= value <= LATEST):
                errors[name] = "Enter a date between 2000 and 2999."
        if start and end and not errors:
            if end < start:
                errors["to"] = "The end date is before the start date."
            elif (end - start).days + 1 > MAX_CUSTOM_DAYS:
                errors["to"] = f"A range covers at most {MAX_CUSTOM_DAYS} days."
        if errors:
            kind, start, end = DEFAULT_RANGE, None, None
    if start is None:
        end = today
        start = today - timedelta(days=int(kind) - 1)
    values = {}
    for name, allowed in (("call_type", CALL_TYPES), ("context", CONTEXTS),
                          ("charged_to", CHARGED_TO), ("capability", CAPABILITIES)):
        value = (get(name) or "").strip()
        if value and value not in allowed:
            errors[name] = "Not a value of this list."
            value = ""
        values[name] = value
    limit = get("limit")
    if limit and limit not in LIMIT_FILTERS:
        errors["limit"] = "Not a value of this list."
        limit = ""
    user = get("user")[:128]
    return ReportFilters(start=start, end=end, range=kind, user=user, limit=limit,
                         **values), errors


# --- who "user" means ---------------------------------------------------------------------


@dataclass(frozen=True)
class UserMatch:
    """The people (ids) and the unmatched UPNs (calls of nobody in the directory) that a
    user search finds."""

    person_ids: tuple[int, ...] = ()
    upns: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.person_ids and not self.upns


def user_match(*, organization: Organization, filters: ReportFilters) -> UserMatch | None:
    """None when the report is not filtered by user. Two small queries (and one more for
    the people near or over their monthly credits limit)."""
    q = filters.user
    if filters.limit:
        near = {p.pk for p, _line in people_spend(organization=organization,
                                                  at=timezone.now(), status=filters.limit)}
        if not q:
            return UserMatch(tuple(sorted(near)))
        found = user_match(organization=organization, filters=replace(filters, limit=""))
        return UserMatch(tuple(i for i in found.person_ids if i in near))
    if not q:
        return None
    ids = Person.objects.filter(organization=organization).filter(
        Q(display_name__icontains=q) | Q(upn__icontains=q)
    ).values_list("pk", flat=True)[:USER_MATCH_LIMIT]
    upns = (
        UsagePersonDay.objects.filter(organization=organization, person_key=0,
                                   day__gte=filters.start, day__lte=filters.end)
        .filter(Q(upn__icontains=q) | Q(user_name__icontains=q))
        .order_by().values_list("upn", flat=True).distinct()[:USER_MATCH_LIMIT]
    )
    return UserMatch(tuple(ids), tuple(u for u in upns if u))


def _dims(filters: ReportFilters) -> dict:
    dims = {}
    if filters.call_type:
        dims["call_type"] = filters.call_type
    if filters.context:
        dims["context"] = filters.context
    if filters.charged_to:
        dims["charged_to"] = filters.charged_to
    if filters.capability:
        dims["capability"] = filters.capability
    return dims


def _rollups(model, organization, filters, match: UserMatch | None,
             lean: bool = True) -> QuerySet:
    if lean and model is UsageRollup and not _dims(filters):
        # Filtered by nothing but the range or the user: the lean per-person-day table.
        model = UsagePersonDay
    qs = model.objects.filter(organization=organization, day__gte=filters.start,
                              day__lte=filters.end, **_dims(filters))
    if match is not None:
        qs = qs.filter(Q(person_key__in=match.person_ids) | Q(person_key=0,
                                                               upn__in=match.upns))
    return qs.order_by()


def calls_queryset(*, organization: Organization, filters: ReportFilters,
                   match: UserMatch | None) -> QuerySet[CallRecord]:
    """The call records the report (and an export) covers, unordered."""
    qs = CallRecord.objects.filter(organization=organization, start_at__gte=filters.start_at,
                                   start_at__lt=filters.end_before)
    if filters.call_type:
        qs = qs.filter(call_type=filters.call_type)
    if filters.context:
        qs = qs.filter(destination_context__iexact=filters.context)
    if filters.charged_to:
        qs = qs.filter(charged_to=filters.charged_to)
    if filters.capability:
        qs = qs.filter(capability=filters.capability)
    if match is not None:
        qs = qs.filter(Q(person_id__in=match.person_ids)
                       | Q(person__isnull=True, upn__in=match.upns))
    return qs


# --- tiles, charts, top lists -------------------------------------------------------------

_SUMS = dict(calls=Sum("calls"), duration_s=Sum("duration_s"), billable_s=Sum("billable_s"),
             credit_s=Sum("credit_s"), pool_minutes=Sum("pool_minutes"), charge=Sum("charge"))


def minutes_of(seconds: int) -> Decimal:
    """Seconds as minutes with one decimal, rounded half up: the one rounding the report,
    the workbook's Summary and the tiles share."""
    return (Decimal(seconds or 0) / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class Totals:
    calls: int = 0
    duration_s: int = 0
    billable_s: int = 0
    credit_s: int = 0
    pool_minutes: int = 0
    charge: Decimal = ZERO
    as_of: datetime | None = None

    @property
    def minutes(self) -> Decimal:
        return minutes_of(self.duration_s)

    @property
    def cost_per_minute(self) -> Decimal | None:
        """Credits spent per minute paid with credits (None when none was)."""
        if not self.credit_s:
            return None
        return (self.charge * 60 / self.credit_s).quantize(Decimal("0.0001"),
                                                          rounding=ROUND_HALF_UP)


def _totals_of(row: dict) -> Totals:
    return Totals(
        calls=row.get("calls") or 0, duration_s=row.get("duration_s") or 0,
        billable_s=row.get("billable_s") or 0, credit_s=row.get("credit_s") or 0,
        pool_minutes=row.get("pool_minutes") or 0,
        charge=(row.get("charge") or ZERO).quantize(CENT),
        as_of=row.get("as_of"),
    )


def report_totals(*, organization: Organization, filters: ReportFilters,
                  match: UserMatch | None) -> Totals:
    row = _rollups(UsageRollup, organization, filters, match).aggregate(
        **_SUMS, as_of=Max("updated_at"))
    return _totals_of(row)


@dataclass
class Day:
    day: date
    totals: Totals = field(default_factory=Totals)


def report_daily(*, organization: Organization, filters: ReportFilters,
                 match: UserMatch | None) -> list[Day]:
    """Every day of the range, with zeros for days without calls."""
    by_day = {
        row["day"]: _totals_of(row)
        for row in _rollups(UsageRollup, organization, filters, match)
        .values("day").annotate(**_SUMS)
    }
    return [Day(d, by_day.get(d, Totals()))
            for d in (filters.start + timedelta(days=i) for i in range(filters.days))]


DAILY_SPLITS = ("call_type", "charged_to")


def report_daily_by(*, organization: Organization, filters: ReportFilters,
                    match: UserMatch | None) -> dict[str, dict[str, dict[date, Totals]]]:
    """The daily sums split by call type and by payer, in one query: {"call_type": {code:
    {day: Totals}}, "charged_to": {...}}, only for the values and days that have calls
    (the charts' series)."""
    out: dict[str, dict[str, dict[date, Totals]]] = {d: {} for d in DAILY_SPLITS}
    for row in (_rollups(UsageRollup, organization, filters, match, lean=False)
                .values("day", *DAILY_SPLITS).annotate(**_SUMS)):
        part = _totals_of(row)
        for dimension in DAILY_SPLITS:
            by_day = out[dimension].setdefault(row[dimension] or "", {})
            by_day[row["day"]] = _add(by_day.get(row["day"]), part)
    return out


def _add(a: "Totals | None", b: "Totals") -> "Totals":
    if a is None:
        return b
    return Totals(calls=a.calls + b.calls, duration_s=a.duration_s + b.duration_s,
                  billable_s=a.billable_s + b.billable_s, credit_s=a.credit_s + b.credit_s,
                  pool_minutes=a.pool_minutes + b.pool_minutes, charge=a.charge + b.charge)


@dataclass
class Spender:
    person_id: int | None
    upn: str
    name: str
    totals: Totals


def report_top_spenders(*, organization: Organization, filters: ReportFilters,
                        match: UserMatch | None, limit: int = 10) -> list[Spender]:
    rows = list(
        _rollups(UsageRollup, organization, filters, match)
        .values("person_key", "upn").annotate(**_SUMS, name=Max("user_name"))
        .filter(charge__gt=0).order_by("-charge", "-calls", "person_key", "upn")[:limit]
    )
    people = {
        p.pk: p for p in Person.objects.filter(
            organization=organization, pk__in=[r["person_key"] for r in rows if r["person_key"]]
        ).only("pk", "display_name", "upn")
    } if any(r["person_key"] for r in rows) else {}
    spenders = []
    for row in rows:
        person = people.get(row["person_key"])
        spenders.append(Spender(
            person.pk if person else None,
            person.upn if person else row["upn"],
            person.display_name if person else (row["name"] or row["upn"]),
            _totals_of(row),
        ))
    return spenders


@dataclass
class Destination:
    name: str
    totals: Totals


def report_top_destinations(*, organization: Organization, filters: ReportFilters,
                            match: UserMatch | None, limit: int = 10) -> list[Destination]:
    """By calls. Filtered by user, the rollup (which has no person) cannot answer: the call
    records of the matched people are summed instead, through the person index."""
    if match is None:
        rows = (_rollups(UsageDestinationRollup, organization, filters, None)
                .values("destination").annotate(**_SUMS))
    else:
        rows = (calls_queryset(organization=organization, filters=filters, match=match)
                .order_by().values(destination=F("destination_name"))
                .annotate(calls=Count("id"), duration_s=Sum("duration_s"),
                          billable_s=Sum("billable_seconds"), credit_s=Sum("credit_seconds"),
                          pool_minutes=Sum("pool_minutes"), charge=Sum("charge")))
    rows = rows.order_by("-calls", "-charge")[:limit]
    return [Destination(r["destination"] or "", _totals_of(r)) for r in rows]


# --- the table ----------------------------------------------------------------------------

# Sort key -> CallRecord field; the table can be sorted on these.
SORTS = {
    "start": "start_at",
    "duration": "duration_s",
    "charge": "charge",
    "user": "user_display_name",
    "type": "call_type",
    "destination": "destination_name",
}
DEFAULT_SORT = "-start"


def parse_sort(value: str) -> str:
    key = (value or "").lstrip("-")
    return value if key in SORTS else DEFAULT_SORT


def encode_cursor(sort: str, value, pk: int) -> str:
    return cursors.encode_cursor(f"report:{sort}", value, pk)


def decode_cursor(token: str, sort: str) -> tuple[object, int] | None:
    """The cursor's (value, id), or None for anything that is not a cursor of this sort
    (the page then starts from the top)."""
    try:
        return cursors.decode_row_cursor(token, f"report:{sort}")
    except cursors.InvalidCursor:
        return None


@dataclass
class RowsPage:
    rows: list[CallRecord]
    next_cursor: str | None
    prev_cursor: str | None


def report_rows_page(*, organization: Organization, filters: ReportFilters,
                     match: UserMatch | None, sort: str = DEFAULT_SORT, after: str = "",
                     before: str = "", size: int = PAGE_SIZE) -> RowsPage:
    """One page of the table, keyset-paged on (sort field, id): one query, whatever the
    depth. `after` continues forward from a cursor, `before` goes back."""
    sort = parse_sort(sort)
    descending = sort.startswith("-")
    name = SORTS[sort.lstrip("-")]
    qs = calls_queryset(organization=organization, filters=filters, match=match)
    if match is not None and match.empty:
        return RowsPage([], None, None)
    cursor = decode_cursor(after, sort) if after else None
    backward = False
    if cursor is None and before:
        cursor = decode_cursor(before, sort)
        backward = cursor is not None
    # Walking backward is walking the reverse order forward, then flipping the page.
    forward_desc = descending != backward
    if cursor is not None:
        value, pk = cursor
        op = "lt" if forward_desc else "gt"
        # The plain bound lets the index start at the cursor; the OR breaks the tie.
        qs = qs.filter(**{f"{name}__{op}e": value}).filter(
            Q(**{f"{name}__{op}": value}) | Q(**{name: value, f"pk__{op}": pk}))
    order = [f"-{name}", "-pk"] if forward_desc else [name, "pk"]
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backward:
        rows.reverse()
    if not rows:
        return RowsPage([], None, None)
    first, last = rows[0], rows[-1]
    has_next = more if not backward else True
    has_prev = (cursor is not None) if not backward else more
    return RowsPage(
        rows,
        encode_cursor(sort, getattr(last, name), last.pk) if has_next else None,
        encode_cursor(sort, getattr(first, name), first.pk) if has_prev else None,
    )


def charged_to_label(value: str) -> str:
    try:
        return str(ChargedTo(value).label)
    except ValueError:
        return value
