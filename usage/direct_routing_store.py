"""Direct Routing calls in the database: ingestion (one path for the API, the import command
and the upload page) and the reads of the API and of the report's Direct Routing tab.

A batch of up to FILE_ROWS_PER_BATCH rows is one transaction. Concurrent batches of one
organization are serialized by a transaction-scoped advisory lock (PostgreSQL), so the
duplicate check cannot race; nothing is charged, so no credit account is locked. A row is a
duplicate when its id or its leg key (usage.direct_routing.leg_key) is stored already or
repeated in the batch: a leg imported from Microsoft's CSV and again from Graph is one row.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from credits.models import Organization
from credits.platform.db import existing_values
from credits.platform.gcpause import cyclic_gc_paused
from credits.platform.services import Actor, ServiceError, audit_record

from . import cursors, direct_routing, ingest
from .models import CallSource, DirectRoutingCall

# The first key of this module's advisory locks (PostgreSQL), apart from other users'.
INGEST_LOCK_SPACE = 16_002


@dataclass
class DirectRoutingResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"index", "id", "errors"}


def _reported_id(raw) -> str | None:
    if not isinstance(raw, dict):
        return None
    value = raw.get("id") or raw.get("correlationId")
    if not isinstance(value, str):
        return None
    if ingest.text_problem(value):
        return value.encode("unicode_escape").decode("ascii")
    return value


def _lock(organization: Organization) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [INGEST_LOCK_SPACE, organization.pk % 2**31])


@cyclic_gc_paused()
def direct_routing_ingest(*, organization: Organization, rows: Sequence, source: str,
                          actor: Actor | None = None,
                          now: datetime | None = None) -> DirectRoutingResult:
    """Validate and store up to FILE_ROWS_PER_BATCH Graph directRoutingLogRow dicts. Rejected
    rows come back with their index and the errors per field; duplicates are counted. The
    batch runs with the cyclic garbage collector paused (credits.platform.gcpause)."""
    if source not in CallSource.values:
        raise ValueError(f"unknown source {source!r}")
    if len(rows) > ingest.FILE_ROWS_PER_BATCH:
        raise ServiceError(f"At most {ingest.FILE_ROWS_PER_BATCH} rows per batch.",
                           field="value")
    now = now or timezone.now()
    result = DirectRoutingResult()
    parsed: list[direct_routing.DirectRoutingRow] = []
    for index, raw in enumerate(rows):
        row, errors = direct_routing.parse_row(raw, now)
        if errors:
            result.rejected.append({"index": index, "id": _reported_id(raw),
                                    "errors": errors})
        else:
            parsed.append(row)
    if not parsed:
        return result
    with transaction.atomic():
        _lock(organization)
        scope = {"scope_column": "organization_id", "scope_id": organization.pk}
        stored_ids = existing_values(DirectRoutingCall, "graph_id",
                                     [r.graph_id for r in parsed], **scope)
        stored_legs = existing_values(DirectRoutingCall, "leg_key",
                                      [r.leg_key for r in parsed], **scope)
        fresh = []
        for row in parsed:
            if row.graph_id in stored_ids or row.leg_key in stored_legs:
                result.duplicates += 1
                continue
            stored_ids.add(row.graph_id)
            stored_legs.add(row.leg_key)
            fresh.append(DirectRoutingCall(
                organization=organization, graph_id=row.graph_id, leg_key=row.leg_key,
                correlation_id=row.correlation_id,
                shared_correlation_id=row.shared_correlation_id, user_id=row.user_id,
                upn=row.upn, user_display_name=row.user_display_name,
                user_country=row.user_country, start_at=row.start, invite_at=row.invite,
                failure_at=row.failure, end_at=row.end, duration_s=row.duration,
                successful=row.successful, call_type=row.call_type,
                caller_number=row.caller, callee_number=row.callee,
                media_region=row.media_region, signaling_region=row.signaling_region,
                final_sip_code=row.final_sip_code, final_subcode=row.final_subcode,
                final_sip_phrase=row.final_sip_phrase, sbc_fqdn=row.sbc_fqdn,
                media_bypass=row.media_bypass, other_party_country=row.other_party_country,
                source=source, ingested_at=now))
        if fresh:
            DirectRoutingCall.objects.bulk_create(fresh, batch_size=1000)
            result.accepted = len(fresh)
            audit_record(organization=organization,
                         actor=actor or Actor.system(f"ingest:{source}"),
                         action="direct_routing.ingest",
                         changes={"source": source, "accepted": result.accepted,
                                  "duplicates": result.duplicates,
                                  "rejected": len(result.rejected)})
    return result


def direct_routing_ingest_batches(*, organization: Organization, batches: Iterable[Sequence],
                                  source: str, actor: Actor | None = None):
    """(offset, rows in the batch, result) for each batch, each its own transaction."""
    offset = 0
    for batch in batches:
        part = direct_routing_ingest(organization=organization, rows=batch, source=source,
                                     actor=actor)
        yield offset, len(batch), part
        offset += len(batch)


# --- the API's pages ----------------------------------------------------------------------

CURSOR_SCOPE = "direct-routing-calls"


def encode_cursor(start_at: datetime, pk: int) -> str:
    return cursors.encode_cursor(CURSOR_SCOPE, start_at, pk)


def decode_cursor(token: str) -> tuple[datetime, int]:
    start, pk = cursors.decode_row_cursor(token, CURSOR_SCOPE)
    if not isinstance(start, datetime):
        raise cursors.InvalidCursor("not a call cursor")
    return start, pk


def direct_routing_page(*, organization: Organization, start: datetime, end: datetime,
                        after: tuple[datetime, int] | None = None, size: int = 1000
                        ) -> tuple[list[DirectRoutingCall], tuple[datetime, int] | None]:
    """Calls that started in [start, end] (both inclusive), in (start, id) order, keyset
    paged: the rows and the next page's cursor (None on the last)."""
    qs = DirectRoutingCall.objects.filter(organization=organization, start_at__gte=start,
                                          start_at__lte=end)
    if after is not None:
        a_start, a_pk = after
        qs = qs.filter(Q(start_at__gt=a_start) | Q(start_at=a_start, pk__gt=a_pk))
    rows = list(qs.order_by("start_at", "pk")[: size + 1])
    if len(rows) > size:
        rows = rows[:size]
        return rows, (rows[-1].start_at, rows[-1].pk)
    return rows, None


def as_graph(call: DirectRoutingCall) -> dict:
    """A stored call as Graph's directRoutingLogRow (plus the export's userCountryCode and
    sharedCorrelationId)."""
    return {
        "id": call.graph_id, "correlationId": call.correlation_id or None,
        "userId": call.user_id or None, "userPrincipalName": call.upn or None,
        "userDisplayName": call.user_display_name or None,
        "startDateTime": call.start_at, "inviteDateTime": call.invite_at,
        "failureDateTime": call.failure_at, "endDateTime": call.end_at,
        "duration": call.duration_s, "callType": call.call_type or None,
        "successfulCall": call.successful, "callerNumber": call.caller_number or None,
        "calleeNumber": call.callee_number or None,
        "mediaPathLocation": call.media_region or None,
        "signalingLocation": call.signaling_region or None,
        "finalSipCode": call.final_sip_code, "callEndSubReason": call.final_subcode,
        "finalSipCodePhrase": call.final_sip_phrase or None,
        "trunkFullyQualifiedDomainName": call.sbc_fqdn or None,
        "mediaBypassEnabled": call.media_bypass,
        "userCountryCode": call.user_country or None,
        "sharedCorrelationId": call.shared_correlation_id or None,
    }


# --- the report's Direct Routing tab ------------------------------------------------------

SUCCESS_CHOICES = ("success", "failure")
PAGE_SIZE = 50


@dataclass(frozen=True)
class DirectRoutingFilters:
    start: date
    end: date
    sbc: str = ""
    success: str = ""  # "", "success", "failure"
    user: str = ""


def filtered(*, organization: Organization, filters: DirectRoutingFilters,
             start_at: datetime, end_before: datetime) -> QuerySet[DirectRoutingCall]:
    qs = DirectRoutingCall.objects.filter(organization=organization, start_at__gte=start_at,
                                          start_at__lt=end_before)
    if filters.sbc:
        qs = qs.filter(sbc_fqdn=filters.sbc)
    if filters.success == "success":
        qs = qs.filter(successful=True)
    elif filters.success == "failure":
        qs = qs.filter(successful=False)
    if filters.user:
        qs = qs.filter(Q(upn__icontains=filters.user)
                       | Q(user_display_name__icontains=filters.user))
    return qs


@dataclass
class DirectRoutingSummary:
    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    seconds: int = 0
    as_of: datetime | None = None
    by_code: list[dict] = field(default_factory=list)  # {"code", "phrase", "calls"}
    by_day: list[tuple[date, int, int]] = field(default_factory=list)  # day, ok, failed
    by_sbc: list[dict] = field(default_factory=list)  # {"sbc", "calls", "failed"}


def direct_routing_summary(qs: QuerySet[DirectRoutingCall]) -> DirectRoutingSummary:
    totals = qs.aggregate(calls=Count("pk"), ok=Count("pk", filter=Q(successful=True)),
                          seconds=Sum("duration_s"), as_of=Max("ingested_at"))
    summary = DirectRoutingSummary(calls=totals["calls"], succeeded=totals["ok"],
                                   failed=totals["calls"] - totals["ok"],
                                   seconds=totals["seconds"] or 0, as_of=totals["as_of"])
    if not summary.calls:
        return summary
    summary.by_code = [
        {"code": r["final_sip_code"], "phrase": r["phrase"] or "", "calls": r["calls"]}
        for r in qs.filter(successful=False).values("final_sip_code")
        .annotate(calls=Count("pk"), phrase=Max("final_sip_phrase"))
        .order_by("-calls", "final_sip_code")[:20]]
    summary.by_day = [
        (r["day"], r["ok"], r["calls"] - r["ok"])
        for r in qs.annotate(day=TruncDate("start_at", tzinfo=UTC))
        .values("day").annotate(calls=Count("pk"), ok=Count("pk", filter=Q(successful=True)))
        .order_by("day")]
    summary.by_sbc = [
        {"sbc": r["sbc_fqdn"], "calls": r["calls"], "failed": r["calls"] - r["ok"]}
        for r in qs.values("sbc_fqdn").annotate(
            calls=Count("pk"), ok=Count("pk", filter=Q(successful=True)))
        .order_by("-calls", "sbc_fqdn")[:20]]
    return summary


def sbc_choices(*, organization: Organization, since: datetime) -> list[str]:
    """The SBCs that carried calls since `since` (the filter's choices)."""
    return list(DirectRoutingCall.objects.filter(organization=organization,
                                                 start_at__gte=since)
                .exclude(sbc_fqdn="").values_list("sbc_fqdn", flat=True)
                .distinct().order_by("sbc_fqdn")[:200])


def rows_page(qs: QuerySet[DirectRoutingCall], *, after: str = "", size: int = PAGE_SIZE
              ) -> tuple[list[DirectRoutingCall], str]:
    """A page of rows, newest first, keyset paged on (start, id): the rows and the cursor of
    the next page ("" on the last). A cursor that is not ours starts at the first page."""
    if after:
        try:
            a_start, a_pk = decode_cursor(after)
            qs = qs.filter(Q(start_at__lt=a_start) | Q(start_at=a_start, pk__lt=a_pk))
        except cursors.InvalidCursor:
            pass
    rows = list(qs.order_by("-start_at", "-pk")[: size + 1])
    if len(rows) > size:
        rows = rows[:size]
        return rows, encode_cursor(rows[-1].start_at, rows[-1].pk)
    return rows, ""


def stream_for_export(*, organization: Organization, start_at: datetime,
                      end_before: datetime, chunk_size: int = 5000):
    """The calls of a range in (start, id) order, read in chunks."""
    return (DirectRoutingCall.objects.filter(organization=organization,
                                             start_at__gte=start_at, start_at__lt=end_before)
            .order_by("start_at", "pk").iterator(chunk_size=chunk_size))


def day_range(start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time.min, tzinfo=UTC),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC))
