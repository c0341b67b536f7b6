"""The usage app's PostgreSQL fast paths, each a named function with a portable equivalent.

Callers choose in one visible place: `if pg.available(): pg.<fast path>(...) else: <portable
version>`. Each function here gives the same result as its portable twin (named in its
docstring); tests/usage/test_fast_paths.py runs both on the same input and compares.
"""

import functools
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from credits import products
from credits.models import (
    CreditAccount,
    LicenseAssignment,
    MinutePool,
    Organization,
    Person,
    SpendCounter,
)
from credits.money import ZERO
from credits.platform.db import copy_rows_pg, pg_text_array
from credits.spend_limits import month_of

from . import masking
from .models import (
    ApiToken,
    CallRecord,
    RateDeck,
    ReconciliationRollup,
    ReconciliationTopCall,
    UsageDestinationRollup,
    UsagePersonDay,
    UsageRollup,
)
from .models.reconciliation import TOP_PER_DAY
from .records import COLUMNS, CallRecordRow


def available() -> bool:
    """Whether the default database is PostgreSQL, where the functions below run."""
    return connection.vendor == "postgresql"


def prepared_cursor():
    """A cursor for a statement run on every request, whose parsing and planning would cost
    more than running it: Django's cursor wrapper (its error wrapping, execute wrappers and
    health check) over a psycopg cursor that binds parameters on the server, so that
    PostgreSQL prepares the statement once per connection (config.settings:
    `prepare_threshold`) and then skips parsing and planning it. Django's own cursors bind
    on the client and are never prepared.

    The psycopg cursor and its wrapper are kept for the connection's life (one per thread,
    as Django's connections are) rather than made per statement: setting up its loaders
    again on every request cost about a fifth of the statement. A new wrapper when query
    logging is switched on or off (DEBUG, assertNumQueries). Not to be closed by the
    caller."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each read through `connection` looks it up
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = db.connection
    logged = db.queries_logged
    kept = getattr(db, "_cc_prepared_cursor", None)
    if kept is None or kept[0].connection is not raw or kept[0].closed or kept[1] != logged:
        cursor = psycopg.Cursor(raw)
        wrapped = db.make_debug_cursor(cursor) if logged else db.make_cursor(cursor)
        kept = db._cc_prepared_cursor = (cursor, logged, wrapped)
    return kept[2]


# --- ingestion ------------------------------------------------------------------------------


def copy_call_records(records: Sequence[CallRecordRow]) -> None:
    """Store the call records with one binary COPY: no text formatting of dates and decimals
    here, no parsing of them by the server. Portable: `bulk_create` (usage.services)."""
    copy_rows_pg(CallRecord, COLUMNS, records)


# The measures of every rollup table, in the order of `_SUMS` below.
_MEASURES = ("calls", "duration_s", "billable_s", "credit_s", "pool_minutes", "charge")
_SUMS = ("count(*), sum(duration_s), sum(billable_seconds), sum(credit_seconds), "
         "sum(pool_minutes), sum(charge)")


def _name_update(table: str) -> str:
    return (f", updated_at = EXCLUDED.updated_at, user_name = CASE WHEN EXCLUDED.user_name "
            f"<> '' THEN EXCLUDED.user_name ELSE {table}.user_name END")


def rollups_add_stored(*, organization: Organization, graph_ids: Sequence[str]) -> None:
    """Add the calls just stored with these ids (in this transaction) to the rollups,
    grouped by the database in one statement: the sums of `usage.rollups.rollups_add_calls`,
    without shipping the rows back and forth or grouping in Python. The name kept is the
    latest non-empty display name of the batch's calls.

    The same statement (one read of the batch's rows) keeps the reconciliation's rollup and
    per-day top list (`_reconciliation_sql`); portable: `usage.reconciliation_rollups.
    reconciliation_add_calls`."""
    if not graph_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(*rollups_add_stored_statement(organization=organization,
                                                     graph_ids=graph_ids))


def rollups_add_stored_statement(*, organization: Organization,
                                 graph_ids: Sequence[str]) -> tuple[str, list]:
    """The statement of `rollups_add_stored` and its parameters.

    The batch's rows are read by one probe of the unique index (graph_id, organization) per
    id, as `credits.platform.db.existing_values_pg_sql` explains: a LATERAL subquery with
    LIMIT (never a scan of all the organization's calls, whose cost would grow with its
    history) and the organization as `organization_id + 0` (so no index on the
    organization competes, whatever the statistics say of it)."""
    calls = CallRecord._meta.db_table
    rollup, person_day, place = (UsageRollup._meta.db_table, UsagePersonDay._meta.db_table,
                                 UsageDestinationRollup._meta.db_table)
    measures = ", ".join(_MEASURES)
    adds = {t: ", ".join(f"{m} = {t}.{m} + EXCLUDED.{m}" for m in _MEASURES)
            for t in (rollup, person_day, place)}
    name = "COALESCE((array_agg(name ORDER BY id DESC) FILTER (WHERE name <> ''))[1], '')"
    person_key = "day, person_key, upn, call_type, context, charged_to, capability"
    place_key = "day, destination, call_type, context, charged_to, capability"
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
               duration_s, billable_seconds, credit_seconds, pool_minutes, charge,
               graph_id, destination_country, rated, reported_charge,
               CASE WHEN reported_charge IS NULL OR currency = '' THEN ''
                    ELSE currency END AS reported_currency
        FROM unnest(%s::text[]) AS batch(wanted) CROSS JOIN LATERAL (
            SELECT * FROM {calls} WHERE graph_id = batch.wanted
            AND organization_id + 0 = %s LIMIT 1) AS stored
    ), r1 AS (
        INSERT INTO {rollup} (organization_id, {person_key}, user_name, updated_at,
                              {measures})
        SELECT %s, {person_key}, left({name}, 128), %s, {_SUMS}
        FROM c GROUP BY {person_key} ORDER BY {person_key}
        ON CONFLICT (organization_id, {person_key}) DO UPDATE SET {adds[rollup]}
            {_name_update(rollup)}
    ), r2 AS (
        INSERT INTO {person_day} (organization_id, day, person_key, upn, user_name,
                                  updated_at, {measures})
        SELECT %s, day, person_key, upn, left({name}, 128), %s, {_SUMS}
        FROM c GROUP BY day, person_key, upn ORDER BY day, person_key, upn
        ON CONFLICT (organization_id, day, person_key, upn) DO UPDATE SET
            {adds[person_day]} {_name_update(person_day)}
    ), r3 AS (
        INSERT INTO {place} (organization_id, {place_key}, {measures})
        SELECT %s, {place_key}, {_SUMS} FROM c GROUP BY {place_key} ORDER BY {place_key}
        ON CONFLICT (organization_id, {place_key}) DO UPDATE SET {adds[place]}
    ){_reconciliation_sql()}
    """
    now = timezone.now()
    org = organization.pk
    # The ids as one array literal: psycopg renders a list element by element, slowly.
    return sql, [pg_text_array(graph_ids), org, org, now, org, now, org,
                 org, organization.currency, org, org, TOP_PER_DAY, TOP_PER_DAY]


def _reconciliation_sql() -> str:
    """The end of `rollups_add_stored`: the batch (`c`) added to the reconciliation rollup,
    and offered to the per-day top list, which keeps each day's TOP_PER_DAY largest gaps.
    The list's current rows and the batch's candidates are ranked together, so one
    statement inserts the winners and deletes the rows pushed out. Parameters: organization,
    its currency, organization, organization, TOP_PER_DAY, TOP_PER_DAY."""
    rollup = ReconciliationRollup._meta.db_table
    top = ReconciliationTopCall._meta.db_table
    key = "day, person_key, upn, destination_country, currency"
    adds = ", ".join(f"{m} = {rollup}.{m} + EXCLUDED.{m}"
                     for m in ("calls", "unrated", "reported_charge", "rated_charge"))
    return f""", r4 AS (
        INSERT INTO {rollup} (organization_id, {key}, calls, unrated, reported_charge,
                              rated_charge)
        SELECT %s, day, person_key, upn, destination_country, reported_currency, count(*),
               count(*) FILTER (WHERE NOT rated), COALESCE(sum(reported_charge), 0),
               sum(charge)
        FROM c GROUP BY day, person_key, upn, destination_country, reported_currency
        ORDER BY day, person_key, upn, destination_country, reported_currency
        ON CONFLICT (organization_id, {key}) DO UPDATE SET {adds}
    ), candidates AS (
        SELECT day, graph_id, charge - reported_charge AS difference,
               abs(charge - reported_charge) AS gap
        FROM c WHERE reported_currency = %s AND charge <> reported_charge
    ), ranked AS (
        SELECT id, day, graph_id, difference, gap,
               row_number() OVER (PARTITION BY day ORDER BY gap DESC, graph_id) AS place
        FROM (SELECT id, day, graph_id, difference, gap FROM {top}
              WHERE organization_id = %s AND day IN (SELECT day FROM candidates)
              UNION ALL
              SELECT NULL, day, graph_id, difference, gap FROM candidates) AS offered
    ), added AS (
        INSERT INTO {top} (organization_id, day, graph_id, difference, gap)
        SELECT %s, day, graph_id, difference, gap FROM ranked
        WHERE id IS NULL AND place <= %s
    )
    DELETE FROM {top} WHERE id IN (SELECT id FROM ranked
                                   WHERE id IS NOT NULL AND place > %s)"""


# PostgreSQL types of the rollup columns, for the `unnest` upsert (text when not listed).
_ROLLUP_TYPES = {"organization_id": "integer", "day": "date", "person_key": "bigint",
                 "updated_at": "timestamptz", "calls": "integer", "duration_s": "bigint",
                 "billable_s": "bigint", "credit_s": "bigint", "pool_minutes": "bigint",
                 "charge": "numeric", "unrated": "integer", "reported_charge": "numeric",
                 "rated_charge": "numeric"}


def rollups_upsert(table: str, columns: Sequence[str], conflict: str,
                   rows: list[list]) -> None:
    """`INSERT INTO table (columns) ... ON CONFLICT <conflict>` of `rows` as one statement
    with one array per column: the query text is the same for every batch and short, so
    neither psycopg nor the server parses thousands of placeholders (a VALUES list of 200
    rows x 16 columns cost more than the insert). Portable: VALUES lists in chunks
    (`usage.rollups._upsert`)."""
    arrays = ", ".join(f"%s::{_ROLLUP_TYPES.get(c, 'text')}[]" for c in columns)
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
           f"ON CONFLICT {conflict}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(values) for values in zip(*rows, strict=True)])


# --- call authorization -----------------------------------------------------------------


def _text_array(values) -> str:
    """A constant text array of the products' names, written into the statement's text."""
    for value in values:
        if not value.replace("_", "").isalnum() or not value.isascii():
            raise ValueError(f"not a product name: {value!r}")
    return "ARRAY[{}]::text[]".format(", ".join(f"'{v}'" for v in values))


@functools.cache
def _authorize_facts_sql(pool_kinds: tuple[str, ...] = ()) -> str:
    """The facts of call authorization about one person, as a LATERAL subquery of a row `o`
    of the organizations: the person with the UPN (any case), the SKUs they hold at the
    instant, the balance, the month's spend counters when there is a limit, the rate deck's
    stamp, and the facts of the pools of `pool_kinds` (minutes used this month, licenses
    feeding them). Named parameters: upn, at, month. The pools and
    their SKUs are constants of the call type (rating.pool_kinds_for), written into the
    text: one statement per call type, each prepared once, with no arrays to send. The
    portable reads are `usage.selectors.authorize_facts`'."""
    anywhere = list(products.POOL_SKUS[products.CONFERENCE]) \
        if products.CONFERENCE in pool_kinds else []
    local = [sku for kind in pool_kinds if kind != products.CONFERENCE
             for sku in products.POOL_SKUS.get(kind, ()) if sku not in anywhere]
    la = LicenseAssignment._meta.db_table
    counters = SpendCounter._meta.db_table
    active = ("la.organization_id = o.id AND la.assigned_at <= %(at)s "
              "AND (la.removed_at IS NULL OR la.removed_at > %(at)s)")
    if pool_kinds:
        # Seats of the conferencing pool count wherever they are; the others' only in the
        # pools' country (credits.selectors.licenses.pool_seats_filter).
        seats = " OR ".join(
            ([f"la.sku = ANY({_text_array(anywhere)})"] if anywhere else [])
            + ([f"(la.sku = ANY({_text_array(local)}) AND la.usage_location = pc.country)"]
               if local else [])) or "FALSE"
        pools = f"""ARRAY(SELECT mp.kind || ':' || mp.used_minutes
                FROM {MinutePool._meta.db_table} mp
                WHERE mp.organization_id = o.id AND mp.month = %(month)s
                AND mp.kind = ANY({_text_array(pool_kinds)}) AND mp.country = CASE
                  WHEN mp.kind = '{products.CONFERENCE}' THEN '' ELSE pc.country END
          ) AS pool_used,
          ARRAY(SELECT la.sku || ':' || count(*) FROM {la} la
                WHERE {active} AND ({seats}) GROUP BY la.sku) AS pool_seats"""
    else:
        pools = "ARRAY[]::text[] AS pool_used, ARRAY[]::text[] AS pool_seats"
    return f"""LEFT JOIN LATERAL (
        SELECT p.id AS person_id, p.usage_location,
          ARRAY(SELECT la.sku FROM {la} la WHERE {active} AND la.person_id = p.id) AS skus,
          a.balance, a.monthly_spend_limit,
          -- The month's spend counters (credits.models.spend; the organization's is key
          -- 0), read only when there is a limit: CASE evaluates its subquery only then.
          CASE WHEN a.monthly_spend_limit IS NOT NULL THEN (
            SELECT c.spent FROM {counters} c WHERE c.organization_id = o.id
            AND c.month = %(month)s AND c.person_key = 0) END AS org_spent,
          p.credits_monthly_limit,
          CASE WHEN p.credits_monthly_limit IS NOT NULL THEN (
            SELECT c.spent FROM {counters} c WHERE c.organization_id = o.id
            AND c.month = %(month)s AND c.person_key = p.id) END AS person_spent,
          -- The deck's stamp: the rate comes from the parsed deck it names
          -- (usage.selectors.deck_for), the rating engine's own lookup.
          d.version AS deck_version, d.loaded_at AS deck_loaded_at,
          pc.country AS pool_country,
          {pools}
        FROM {Person._meta.db_table} p
        -- The pools' usage country: the person's usage location, else the organization's
        -- country (usage.authorize rates the call with the same), in upper case (pool keys).
        CROSS JOIN LATERAL (
          SELECT upper(COALESCE(NULLIF(p.usage_location, ''), o.country)) AS country) pc
        LEFT JOIN {CreditAccount._meta.db_table} a ON a.organization_id = o.id
        LEFT JOIN {RateDeck._meta.db_table} d ON d.organization_id = o.id
        WHERE p.organization_id = o.id AND LOWER(p.upn) = LOWER(%(upn)s::text) LIMIT 1
      ) f ON TRUE"""


def _authorize_params(*, upn: str, at: datetime) -> dict:
    return {"upn": upn.strip(), "at": at, "month": month_of(at)}


def _split_facts(values: Sequence) -> tuple | None:
    """The facts' columns of a row of `_authorize_facts_sql` in usage.selectors.CallFacts'
    order, with the rate deck's stamp (version, loaded at) where the rate goes; None when
    no person matched."""
    (person_id, location, skus, balance, org_limit, org_spent, person_limit, person_spent,
     deck_version, deck_loaded_at, pool_country, used, seats) = values
    if person_id is None:
        return None
    return (person_id, location, frozenset(skus),
            balance if balance is not None else ZERO, (deck_version or 0, deck_loaded_at),
            org_limit, org_spent if org_spent is not None else ZERO,
            person_limit, person_spent if person_spent is not None else ZERO,
            pool_country, _counts(used), _counts(seats))


def _counts(pairs: Sequence[str]) -> dict[str, int]:
    return {name: int(n) for name, _, n in (pair.rpartition(":") for pair in pairs)}


def authorize_facts(*, organization: Organization, upn: str, at: datetime,
                    pool_kinds=()) -> tuple | None:
    """The facts of `usage.selectors.authorize_facts` about the person with this UPN in
    `organization`, in one round trip; None when no such person."""
    sql = (f"SELECT f.* FROM {Organization._meta.db_table} o "
           f"{_authorize_facts_sql(tuple(pool_kinds))} WHERE o.id = %(org)s")
    params = _authorize_params(upn=upn, at=at)
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "org": organization.pk})
        row = cursor.fetchone()
    return _split_facts(row) if row is not None else None


@functools.cache
def _authorize_read_sql(token_columns: tuple[str, ...], organization_columns: tuple[str, ...],
                        pool_kinds: tuple[str, ...]) -> str:
    return (f"SELECT {', '.join(f't.{c}' for c in token_columns)}, "
            f"{', '.join(f'o.{c}' for c in organization_columns)}, f.* "
            f"FROM {ApiToken._meta.db_table} t "
            f"JOIN {Organization._meta.db_table} o ON o.id = t.organization_id "
            f"{_authorize_facts_sql(pool_kinds)} "
            f"WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL")


def authorize_read(*, token_hash: str, token_columns: tuple[str, ...],
                   organization_columns: tuple[str, ...], upn: str, at: datetime,
                   pool_kinds: tuple[str, ...] = ()) -> tuple | None:
    """(the active API token's columns, its organization's columns, the facts of
    `authorize_facts` or None) for the token with this hash, in ONE round trip: call
    authorization sits in the set-up path of every call, where each query costs more than
    the rest of the request. None when no active token has this hash: the token row is
    read on every request, so a revocation holds at once. Portable:
    `usage.selectors.authorize_read`."""
    sql = _authorize_read_sql(token_columns, organization_columns, pool_kinds)
    params = _authorize_params(upn=upn, at=at)
    params["token_hash"] = token_hash
    cursor = prepared_cursor()
    cursor.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    n, m = len(token_columns), len(token_columns) + len(organization_columns)
    return row[:n], row[n:m], _split_facts(row[m:])


# --- the CSV export -----------------------------------------------------------------------


COPY_BLOCK = 1 << 20  # bytes of CSV per compression call
_TS_FRACTION = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"


def _call_time(expr: str) -> str:
    """`usage.exports._iso_call_time` in SQL: the fraction of a second only when there is
    one (one to_char and a replace cost about what the plain to_char did)."""
    return f"replace(to_char(({expr}) AT TIME ZONE 'UTC', {_TS_FRACTION}), '.000000Z', 'Z')"


def _reported_money(column: str) -> str:
    """`usage.exports.reported_money_text` in SQL (NULL stays NULL: an empty cell)."""
    return (f"CASE WHEN {column} = round({column}, 2) THEN round({column}, 2)::text "
            f"ELSE trim_scale({column})::text END")


def _export_csv_select(calls: QuerySet, mask_digits: int, currency: str):
    """The call records as Microsoft's 20 export columns with Microsoft's reported values,
    formatted and masked by PostgreSQL. `currency` is unused: the Currency column is the
    reported one."""

    def text(expr):
        # NULL, not '', for empty text: COPY then writes nothing, as Python's csv does.
        return f"NULLIF({expr}, '')"

    exprs = [
        text("graph_id"), text("call_id"), text("conference_id"), text("usage_country"),
        text("user_id"), text("upn"), text("user_display_name"),
        text(masking.sql_masked("caller_number", "caller", mask_digits)),
        text("call_type"), text("inventory_type"), text("destination_context"),
        text("destination_name"),
        text(masking.sql_masked("callee_number", "callee", mask_digits)),
        _call_time("start_at"),
        _call_time("COALESCE(end_at, start_at + make_interval(secs => duration_s))"),
        "duration_s::text", _reported_money("reported_connection_charge"),
        _reported_money("reported_charge"), text("currency"), text("reported_capability"),
    ]
    annotations = {f"c{i}": RawSQL(e, []) for i, e in enumerate(exprs)}
    return calls.annotate(**annotations).values_list(*annotations).query.sql_with_params()


def _row_ends(block: bytes, quoted: bool) -> tuple[int, bool]:
    """The rows that end in `block` of CSV text, and whether it ends inside a quoted field
    (`quoted`: whether it starts inside one). A line break inside a quoted field (a name
    with a line break) ends no row; a doubled quote toggles twice and changes nothing."""
    if b'"' not in block:
        return (0 if quoted else block.count(b"\n")), quoted
    count = 0
    for i, part in enumerate(block.split(b'"')):
        if i:
            quoted = not quoted
        if not quoted:
            count += part.count(b"\n")
    return count, quoted


def export_csv_copy(member, calls: QuerySet, *, mask_digits: int, currency: str,
                    tick: Callable[[int], None]) -> int:
    """Write `calls` (ordered) to `member` as the export's CSV rows (CRLF line ends), made
    by `COPY (SELECT ...) TO STDOUT`; returns the number of rows. Portable:
    `usage.exports._csv_python`, the same text made in Python.

    COPY's rows arrive one small message each: they are gathered into large blocks, and a
    second thread compresses and writes the blocks (zlib releases the GIL) while this one
    keeps reading from PostgreSQL."""
    try:
        sql, params = _export_csv_select(calls, mask_digits, currency)
    except EmptyResultSet:  # a user filter that matches nobody: Django makes no SQL
        return 0
    done = 0
    quoted = False  # whether the text so far ends inside a quoted field
    blocks: queue.Queue = queue.Queue(maxsize=8)
    failed: list[BaseException] = []

    def write_blocks():
        while (block := blocks.get()) is not None:
            if failed:
                continue  # keep draining so the reader never blocks
            try:
                member.write(block.replace(b"\n", b"\r\n"))
            except BaseException as exc:  # handed to the reading thread below
                failed.append(exc)

    writer = threading.Thread(target=write_blocks, name="csv-zip-writer", daemon=True)
    writer.start()
    try:
        buffer = bytearray()
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
                for chunk in copy:
                    buffer += chunk
                    if len(buffer) >= COPY_BLOCK:
                        block = bytes(buffer)
                        buffer.clear()
                        ends, quoted = _row_ends(block, quoted)
                        done += ends
                        blocks.put(block)
                        tick(done)
        block = bytes(buffer)
        done += _row_ends(block, quoted)[0]
        blocks.put(block)
    finally:
        blocks.put(None)
        writer.join()
    if failed:
        raise failed[0]
    return done
