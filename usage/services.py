"""Writes of the usage app: the rate deck, API tokens, and call ingestion.

Ingestion is one code path for the API, the import command and the upload form
(`calls_ingest`). A batch runs in one transaction:

1. take the organization's ingestion lock (`calls_ingest_lock`): concurrent batches of
   one organization are serialized here, so the duplicate check below cannot race. The
   credit account is locked only in step 5, so payments and adjustments do not wait for a
   whole batch (file imports commit 10,000 rows at a time);
2. drop the ids already stored (and repeated ids within the batch): they are duplicates.
   GUID-shaped ids are compared in their canonical form (`ingest.canonical_id`), so one
   GUID spelled in two cases or with braces is one call;
3. rate every call (usage.rating), taking pool minutes for the whole batch at once
   (`pools_take_minutes`: one lock per pool);
4. store the call records in bulk (COPY on PostgreSQL) and add them to the report's daily
   rollups (usage.rollups) and the reconciliation's (usage.reconciliation_rollups);
5. charge credits in one batch (`credits_charge_usage_batch`, key `call:<graph id>`).

Anything that fails rolls the whole batch back, so a retry finds nothing half-done.
"""

import itertools
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from credits.models import Organization, Person
from credits.money import ZERO
from credits.platform.db import existing_values
from credits.platform.gcpause import cyclic_gc_paused
from credits.platform.services import Actor, ServiceError, audit_record
from credits.selectors.licenses import licenses_at
from credits.services.ledger import (
    UsageCharge,
    credit_account_lock,
    credits_charge_usage_batch,
)
from credits.services.licenses import PoolKey, pools_take_minutes

from . import ingest, pg, rating
from .models import ApiToken, CallRecord, CallSource, Rate, RateDeck
from .places import country_name
from .reconciliation_rollups import reconciliation_add_calls
from .records import CallRecordRow
from .rollups import rollups_add_calls
from .selectors import rate_deck_for, token_hash

# --- rate deck ----------------------------------------------------------------------------


@transaction.atomic
def rate_deck_load(*, organization: Organization, rates: Sequence[rating.Rate],
                   source_name: str = "", replace: bool = True, actor: Actor) -> int:
    """Load parsed rows. `replace` swaps the whole deck for the file's rows; otherwise the
    rows are merged by (direction, prefix, effective_from), replacing those that match."""
    for rate in rates:
        if rate.currency != organization.currency:
            raise ServiceError(f"currency {rate.currency} is not {organization.currency}",
                               field="currency")
        # usage.decks refuses these per line; rates built any other way are held to the
        # same bounds, so that no call can be rated at an absurd price.
        for name, value, limit in (
                ("rate_per_minute", rate.rate_per_minute, rating.MAX_RATE_PER_MINUTE),
                ("connection_fee", rate.connection_fee, rating.MAX_CONNECTION_FEE)):
            if not 0 <= value <= limit:
                raise ServiceError(
                    _("%(direction)s %(prefix)s: %(field)s must be from 0 to %(max)s.") % {
                        "direction": rate.direction, "prefix": rate.prefix, "field": name,
                        "max": limit}, field=name)
    # A file name is kept as text: nothing that text cannot hold (a name read from a
    # non-UTF-8 file system carries lone surrogates).
    source_name = source_name.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    deck, _created = RateDeck.objects.select_for_update(of=("self",)).get_or_create(
        organization=organization)
    existing = Rate.objects.filter(organization=organization)
    if replace:
        removed = existing.delete()[0]
    else:
        keys = {(r.direction, r.prefix, r.effective_from) for r in rates}
        removed = 0
        by_direction = defaultdict(list)
        for d, p, e in keys:
            by_direction[(d, e)].append(p)
        for (d, e), prefixes in by_direction.items():
            removed += existing.filter(direction=d, effective_from=e,
                                       prefix__in=prefixes).delete()[0]
    Rate.objects.bulk_create(
        [Rate(organization=organization, direction=r.direction, prefix=r.prefix,
              destination=r.destination, country=r.country, number_type=r.number_type,
              rate_per_minute=r.rate_per_minute, connection_fee=r.connection_fee,
              first_increment_s=r.first_increment_s, next_increment_s=r.next_increment_s,
              currency=r.currency, effective_from=r.effective_from) for r in rates],
        batch_size=1000,
    )
    deck.version += 1
    deck.source_name = source_name[:200]
    deck.loaded_at = timezone.now()
    deck.loaded_by = actor.label[:200]
    deck.save()
    audit_record(organization=organization, actor=actor, action="rates.load", target=deck,
                 changes={"rows": len(rates), "replaced": removed, "mode":
                          "replace" if replace else "merge", "file": source_name[:200]})
    return len(rates)


# --- API tokens ---------------------------------------------------------------------------

TOKEN_PREFIX = "cc_"


@transaction.atomic
def api_token_create(*, organization: Organization, name: str,
                     actor: Actor) -> tuple[ApiToken, str]:
    """A new token and its value, which is not stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ServiceError(_("A name is required."), field="name")
    if len(name) > 100:
        raise ServiceError(_("At most 100 characters."), field="name")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        organization=organization, name=name, prefix=raw[:10], token_hash=token_hash(raw),
        created_by=actor.label[:200],
    )
    audit_record(organization=organization, actor=actor, action="api_token.create",
                 target=token, changes={"name": name, "prefix": token.prefix})
    return token, raw


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    token = ApiToken.objects.select_for_update(of=("self",)).get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(organization=token.organization, actor=actor, action="api_token.revoke",
                     target=token, changes={"name": token.name, "prefix": token.prefix})
    return token


def api_token_touch(*, token: ApiToken, now: datetime) -> None:
    """Record use at most once a minute: a write per request would cost more than the
    request itself."""
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)


# --- ingestion ----------------------------------------------------------------------------


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"index", "id", "errors"}
    charged: int = 0
    total_charge: object = 0
    unrated: int = 0

    def merge(self, other: "IngestResult", offset: int = 0) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.charged += other.charged
        self.total_charge += other.total_charge
        self.unrated += other.unrated
        self.rejected.extend({**r, "index": r["index"] + offset} for r in other.rejected)


def _people_index(organization: Organization, rows: list[ingest.CallRow]):
    upns = {r.upn.lower() for r in rows if r.upn}
    user_ids = {r.user_id.lower() for r in rows if r.user_id}
    by_upn, by_dir = {}, {}
    if upns or user_ids:
        people = Person.objects.filter(organization=organization).filter(
            _q_upn_or_dir(upns, user_ids)
        ).values_list("pk", "upn", "directory_id", "usage_location")
        for pk, upn, directory_id, location in people:
            by_upn[upn.lower()] = (pk, location)
            by_dir[str(directory_id)] = (pk, location)
    return by_upn, by_dir


def _q_upn_or_dir(upns, user_ids):
    valid_ids = []
    for value in user_ids:
        try:
            valid_ids.append(uuid.UUID(value))
        except ValueError:
            continue
    q = Q(upn__in=list(upns))
    if valid_ids:
        q |= Q(directory_id__in=valid_ids)
    return q


def _skus_by_day(organization, rows, person_ids) -> dict[date, dict[int, frozenset]]:
    """Licenses held per person, read once per UTC day of the batch (at the day's latest
    call start): batches from a live platform span a day or two, so this is one or two
    reads per batch instead of one per call."""
    latest: dict[date, datetime] = {}
    for r in rows:
        day = r.start.date()
        if day not in latest or r.start > latest[day]:
            latest[day] = r.start
    if not person_ids:
        return {day: {} for day in latest}
    return {day: licenses_at(organization=organization, at=at, person_ids=person_ids)
            for day, at in latest.items()}


# pg_advisory_xact_lock(CALLS_LOCK_SPACE, organization id): one organization's PSTN
# ingestion batches take turns (usage.direct_routing_store has its own space).
CALLS_LOCK_SPACE = 16_001


def calls_ingest_lock(organization: Organization) -> None:
    """Inside the batch's transaction: wait for the organization's other ingestion batches
    to commit. PostgreSQL: a transaction-level advisory lock, which nothing but ingestion
    takes. Elsewhere (SQLite, whose writers are serialized anyway): the credit account's
    lock, as before."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                           [CALLS_LOCK_SPACE, organization.pk % 2**31])
    else:
        credit_account_lock(organization=organization)


def _stored_ids(organization: Organization, ids: list[str]) -> set[str]:
    """The canonical ids of `ids` (canonical) that the organization already has, however
    the stored row spells them: rows stored before ids were canonical may hold a GUID in
    upper case or in braces (`ingest.id_spellings`)."""
    ids = [spelling for i in ids for spelling in ingest.id_spellings(i)]
    return {ingest.canonical_id(i) for i in _stored_graph_ids(organization, ids)}


def _stored_graph_ids(organization: Organization, ids: list[str]) -> set[str]:
    return existing_values(CallRecord, "graph_id", ids, scope_column="organization_id",
                           scope_id=organization.pk)


def _insert(records: list[CallRecordRow]) -> None:
    if not records:
        return
    if pg.available():
        pg.copy_call_records(records)
    else:
        CallRecord.objects.bulk_create(
            [CallRecord(**record._asdict()) for record in records],
            batch_size=500,
        )


# What a row that came without `destinationContext` says, from the rating: Microsoft's
# words, relative to the user's location (None: not known, an inbound call).
_CONTEXTS = {True: "Domestic", False: "International"}


@cyclic_gc_paused()
def calls_ingest(*, organization: Organization, rows: Sequence, source: str,
                 actor: Actor | None = None, now: datetime | None = None) -> IngestResult:
    """Validate, rate, store and charge up to FILE_ROWS_PER_BATCH Graph rows (dicts); the
    API takes at most MAX_ROWS_PER_BATCH (usage.ingest).

    Rejected rows are reported with their index and the errors per field; duplicates (ids
    already stored, or repeated in the batch) are counted and not charged again. The
    batch runs with the cyclic garbage collector paused (credits.platform.gcpause).
    """
    if source not in CallSource.values:
        raise ValueError(f"unknown source {source!r}")
    if len(rows) > ingest.FILE_ROWS_PER_BATCH:
        raise ServiceError(f"At most {ingest.FILE_ROWS_PER_BATCH} rows per batch.",
                           field="value")
    now = now or timezone.now()
    result = IngestResult(total_charge=ZERO)
    parsed: list[tuple[int, ingest.CallRow]] = []
    for index, raw in enumerate(rows):
        row, errors = ingest.parse_row(raw, now)
        if errors:
            result.rejected.append({"index": index, "id": _reported_id(raw),
                                    "errors": errors})
        else:
            parsed.append((index, row))
    if not parsed:
        return result

    with transaction.atomic():
        calls_ingest_lock(organization)
        ids = [row.graph_id for _i, row in parsed]
        stored = _stored_ids(organization, ids)
        fresh: list[ingest.CallRow] = []
        seen = set()
        for _index, row in parsed:
            if row.graph_id in stored or row.graph_id in seen:
                result.duplicates += 1
                continue
            seen.add(row.graph_id)
            fresh.append(row)
        if not fresh:
            return result

        deck = rate_deck_for(organization=organization)
        by_upn, by_dir = _people_index(organization, fresh)
        people = []
        for row in fresh:
            who = by_upn.get(row.upn.lower()) if row.upn else None
            if who is None and row.user_id:
                who = by_dir.get(row.user_id.lower())
            people.append(who)
        person_ids = {w[0] for w in people if w}
        skus_by_day = _skus_by_day(organization, fresh, person_ids)

        # Rate in two steps: assess all, take pool minutes for the batch, settle.
        calls, assessments, requests, wanted_at = [], [], [], []
        for row, who in zip(fresh, people, strict=True):
            person_id, location = who if who else (None, "")
            skus = skus_by_day[row.start.date()].get(person_id, frozenset()) \
                if person_id else frozenset()
            call = rating.Call(row.call_type, row.caller, row.callee, row.start, row.duration,
                               location or row.usage_country or organization.country, skus,
                               row.inventory_type)
            a = rating.assess(call, deck)
            calls.append(call)
            assessments.append(a)
            if a.pool_kind is not None and call.duration > 0:
                month = date(row.start.year, row.start.month, 1)
                wanted_at.append(len(requests))
                requests.append((PoolKey(a.pool_kind, a.pool_country, month),
                                 a.minutes_wanted, row.start))
            else:
                wanted_at.append(None)
        given = pools_take_minutes(organization=organization, requests=requests) \
            if requests else []

        ingested_at = now
        records, charges = [], []
        org_id = organization.pk
        for row, who, call, a, slot in zip(fresh, people, calls, assessments, wanted_at,
                                           strict=True):
            r = rating.settle(a, call, given[slot] if slot is not None else 0)
            rate = r.rate
            records.append(CallRecordRow(
                organization_id=org_id, graph_id=row.graph_id, call_id=row.call_id,
                conference_id=row.conference_id, person_id=who[0] if who else None,
                user_id=row.user_id, upn=row.upn, user_display_name=row.user_display_name,
                start_at=row.start, end_at=row.end, duration_s=row.duration,
                call_type=row.call_type, caller_number=row.caller, callee_number=row.callee,
                usage_country=row.usage_country, tenant_country=row.tenant_country,
                destination_context=row.destination_context or _CONTEXTS.get(r.domestic, ""),
                destination_name=row.destination_name
                or country_name(r.destination_country or ""),
                inventory_type=row.inventory_type,
                operator=row.operator, call_duration_source=row.call_duration_source,
                currency=row.currency, reported_charge=row.reported_charge,
                reported_connection_charge=row.reported_connection_charge,
                reported_capability=row.reported_capability,
                rated=r.status == rating.RATED, unrated_reason=r.reason or "",
                charged_to=r.charged_to, pool_kind=r.pool_kind or "",
                pool_country=r.pool_country, pool_minutes=r.pool_minutes,
                credit_seconds=r.credit_seconds, billable_seconds=r.billable_seconds,
                rate_prefix=rate.prefix if rate else "", rate_per_minute=r.rate_per_minute,
                connection_fee=r.connection_fee, charge=r.charge, capability=r.capability,
                destination_country=r.destination_country or "", source=source,
                ingested_at=ingested_at, other_party_country=row.other_party_country,
            ))
            if r.status != rating.RATED:
                result.unrated += 1
            if r.charge > 0:
                charges.append(UsageCharge(
                    key=f"call:{row.graph_id}",
                    amount=r.charge,
                    description=f"{row.call_type} {_masked(row.callee)} "
                                f"{-(-r.credit_seconds // 60)} min",
                    # When the call ended: what it cost is known then.
                    occurred_at=row.end or row.start + timedelta(seconds=row.duration),
                    person_id=who[0] if who else None,
                ))
        _insert(records)
        # The report's daily sums move with the calls, in the same transaction.
        if pg.available():
            # Grouped by the database from the rows just stored: one statement, which keeps
            # the reconciliation's rollups too.
            pg.rollups_add_stored(organization=organization,
                                  graph_ids=[row.graph_id for row in fresh])
        else:
            rollups_add_calls(organization=organization, records=records)
            reconciliation_add_calls(organization=organization, records=records)
        result.accepted = len(records)
        if charges:
            charged = credits_charge_usage_batch(organization=organization, charges=charges)
            result.charged = len(charged.charged_keys)
            result.total_charge = charged.total
        audit_record(
            organization=organization, actor=actor or Actor.system(f"ingest:{source}"),
            action="calls.ingest",
            changes={"source": source, "accepted": result.accepted,
                     "duplicates": result.duplicates, "rejected": len(result.rejected),
                     "charged": result.charged, "total": str(result.total_charge)},
        )
    return result


def calls_ingest_batches(*, organization: Organization, batches: Iterable[Sequence],
                         source: str, actor: Actor | None = None, now: datetime | None = None
                         ) -> Iterator[tuple[int, int, IngestResult]]:
    """Ingest batches of rows (each at most FILE_ROWS_PER_BATCH), one at a time and each in
    its own transaction: yields (index of the batch's first row, rows in it, its result).
    `batches` may be a stream: only the batch being ingested is held."""
    offset = 0
    for batch in batches:
        yield offset, len(batch), calls_ingest(organization=organization, rows=batch,
                                               source=source, actor=actor, now=now)
        offset += len(batch)


def calls_ingest_all(*, organization: Organization, rows: Iterable, source: str,
                     actor: Actor | None = None, now: datetime | None = None) -> IngestResult:
    """Any number of rows, in batches of MAX_ROWS_PER_BATCH, with every rejected row in the
    result (the demo, tests). File imports use usage.imports, which keeps that bounded."""
    iterator = iter(rows)
    size = ingest.MAX_ROWS_PER_BATCH
    batches = iter(lambda: list(itertools.islice(iterator, size)), [])
    total = IngestResult(total_charge=ZERO)
    for offset, _count, part in calls_ingest_batches(
            organization=organization, batches=batches, source=source, actor=actor, now=now):
        total.merge(part, offset)
    return total


def _reported_id(raw) -> str | None:
    """The id of a rejected row as it came, for the caller to find the row; escaped when it
    is not text (NUL, a lone surrogate), so that the JSON answer, the upload page and the
    import command's output can carry it."""
    value = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(value, str):
        return None
    if ingest.text_problem(value):
        return value.encode("unicode_escape").decode("ascii")
    return value


def _masked(number: str) -> str:
    # Ledger descriptions are read by billing staff: the end of the number is not needed.
    return (number[:-4] + "…") if len(number) > 6 else number

