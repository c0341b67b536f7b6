"""Ingestion's batch lookups stay index probes as an organization's history grows
(issue 20): which of a batch's ids are stored (`usage.services._stored_ids`), which charge
keys the ledger holds (`credits_charge_usage_batch`) and the batch's rows read back for the
rollups (`usage.pg.rollups_add_stored`). On an organization with a large history, ANALYZEd,
PostgreSQL planned the former `= ANY(...)` forms as a scan of all the organization's rows,
so every batch cost more as history grew. Here, EXPLAIN must show probes of the unique
index and no scan of the table, for API batches (1,000 ids) and file batches (10,000)."""

import json
import uuid

import pytest
from django.db import connection
from django.db.models import Sum

from credits.models import CreditAccount, LedgerEntry
from credits.platform.db import existing_values, existing_values_pg_sql, pg_text_array
from tests.conftest import requires_postgres
from tests.factories import PersonFactory, graph_row
from tests.usage.conftest import fund, licensed
from usage import pg
from usage.models import CallRecord, UsageRollup
from usage.services import _stored_ids, calls_ingest

pytestmark = [requires_postgres, pytest.mark.django_db]

SEED = 1000
COPIES = 100  # 100,000 stored calls and as many ledger entries


def _copy_history(org, account, to_org, to_account, copies: int) -> None:
    """`copies` copies of `org`'s calls and usage charges for `to_org`, under new GUIDs,
    made by the database."""
    calls, ledger = CallRecord._meta.db_table, LedgerEntry._meta.db_table
    call_columns = [f.column for f in CallRecord._meta.concrete_fields if f.column != "id"]
    ledger_columns = [f.column for f in LedgerEntry._meta.concrete_fields if f.column != "id"]

    def copied(columns, alias, replaced):
        return ", ".join(replaced.get(c, f"{alias}.{c}") for c in columns)

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {calls} ({', '.join(call_columns)}) SELECT "
            + copied(call_columns, "c", {
                "graph_id": "md5(c.graph_id || g || %(to_org)s)::uuid::text",
                "organization_id": "%(to_org)s", "person_id": "NULL"})
            + f" FROM {calls} c CROSS JOIN generate_series(1, %(copies)s) g "
            f"WHERE c.organization_id = %(org)s AND c.id <= (SELECT min(id) + %(last)s "
            f"FROM {calls} WHERE organization_id = %(org)s)",
            # Named: the columns come in the model's order, whatever it is.
            {"to_org": to_org.pk, "copies": copies, "org": org.pk, "last": SEED - 1})
        cursor.execute(
            f"INSERT INTO {ledger} ({', '.join(ledger_columns)}) SELECT "
            + copied(ledger_columns, "e", {
                "idempotency_key":
                    "'call:' || md5(e.idempotency_key || g || %(to_org)s)::uuid::text",
                "organization_id": "%(to_org)s", "account_id": "%(to_account)s"})
            + f" FROM {ledger} e CROSS JOIN generate_series(1, %(copies)s) g "
            f"WHERE e.account_id = %(account)s AND e.kind = 'usage' AND e.id <= "
            f"(SELECT min(id) + %(last)s FROM {ledger} WHERE account_id = %(account)s "
            f"AND kind = 'usage')",
            {"to_org": to_org.pk, "to_account": to_account.pk, "copies": copies,
             "account": account.pk, "last": SEED - 1})


@pytest.fixture
def history(org, other_org, deck):
    """`org` with SEED * (COPIES + 1) stored calls and charges: SEED ingested, then copied
    by the database under new GUIDs; ANALYZEd as autovacuum would. `other_org` has an
    account and no call yet when the tables are analyzed."""
    person = licensed(PersonFactory(organization=org, upn="ana@contoso.com",
                                    usage_location="US"), "MCOEV", "MCOPSTN1")
    fund(org, "100000")
    fund(other_org, "100")
    rows = [graph_row(str(uuid.uuid4()), userPrincipalName=person.upn,
                      calleeNumber="+33123456789", duration=60 + i % 600,
                      startDateTime=f"2026-11-02T{i % 24:02d}:{i % 60:02d}:00Z")
            for i in range(SEED)]
    result = calls_ingest(organization=org, rows=rows, source="api")
    assert result.accepted == SEED and result.charged == SEED, result
    account = CreditAccount.objects.get(organization=org)
    _copy_history(org, account, org, account, COPIES)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CallRecord._meta.db_table}")
        cursor.execute(f"ANALYZE {LedgerEntry._meta.db_table}")
    assert CallRecord.objects.filter(organization=org).count() == SEED * (COPIES + 1)
    return org, account, rows


def _plan_scans(sql: str, params: list) -> list[tuple[str, str, str]]:
    """(node type, table, index) of every node of the plan that reads a table."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    found = []

    def walk(node):
        if "Relation Name" in node:
            found.append((node["Node Type"], node["Relation Name"], node.get("Index Name", "")))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _assert_unique_index_probes(scans, table: str, index: str) -> None:
    on_table = [s for s in scans if s[1] == table]
    assert on_table, scans
    for node_type, _table, used in on_table:
        assert node_type in ("Index Scan", "Index Only Scan") and used == index, scans


def _ids(org, count: int, stored: int) -> list[str]:
    """`count` canonical ids, the first `stored` of them stored calls of `org`."""
    have = list(CallRecord.objects.filter(organization=org)
                .order_by("-id").values_list("graph_id", flat=True)[:stored])
    return have + [str(uuid.uuid4()) for _ in range(count - stored)]


def test_batch_lookups_probe_the_unique_indexes_on_a_large_history(history, other_org):
    """One history (building it is the slow part), every lookup on it, for API batches
    (1,000 ids) and file batches (10,000)."""
    org, account, rows = history
    calls = CallRecord._meta.db_table

    # The history is large enough to matter: there, the former `= ANY(...)` is planned as a
    # scan of the organization's rows (what the checks below see if the rewrite is undone).
    scans = _plan_scans(f"SELECT graph_id FROM {calls} WHERE organization_id = %s "
                        f"AND graph_id = ANY(%s::text[])",
                        [org.pk, pg_text_array(_ids(org, 10_000, stored=1000))])
    assert any(node in ("Seq Scan", "Bitmap Heap Scan") for node, t, _i in scans
               if t == calls), scans

    _assert_lookups_probe_unique_indexes(org, account)

    # An organization the statistics know as empty (its calls all came after the last
    # ANALYZE, as for a new customer importing a year of calls): the same probes.
    other_account = CreditAccount.objects.get(organization=other_org)
    _copy_history(org, account, other_org, other_account, COPIES)
    assert CallRecord.objects.filter(organization=other_org).count() == SEED * COPIES
    # There, with the organization id in plain sight, the planner believes the statistics
    # ("no call") and probes by the index on the organization alone, reading all its calls
    # at every probe (what the checks below see without the `(SELECT %s)`).
    scans = _plan_scans(
        f"SELECT v FROM unnest(%s::text[]) AS v CROSS JOIN LATERAL (SELECT 1 FROM {calls} "
        f"WHERE organization_id = %s AND graph_id = v LIMIT 1) AS hit",
        [pg_text_array(_ids(other_org, 1000, stored=1000)), other_org.pk])
    assert any(index != "callrecord_unique_graph_id" for _n, t, index in scans
               if t == calls), scans
    _assert_lookups_probe_unique_indexes(other_org, other_account)

    # Statistics that say every row has its own organization and account (what ANALYZE
    # records of a table analyzed when it held a handful of rows, each another
    # organization's): each organization then "has one row" whatever its history.
    ledger = LedgerEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no ALTER with checks pending
        cursor.execute(f"ALTER TABLE {calls} ALTER COLUMN organization_id SET (n_distinct = -1)")
        cursor.execute(f"ALTER TABLE {ledger} ALTER COLUMN account_id SET (n_distinct = -1)")
        cursor.execute(f"ANALYZE {calls}")
        cursor.execute(f"ANALYZE {ledger}")
    _assert_lookups_probe_unique_indexes(org, account)

    # End to end: a batch half already stored is half duplicates, charged once, and the
    # rollups count each new call once.
    before = LedgerEntry.objects.filter(account=account).count()
    calls_before = UsageRollup.objects.filter(organization=org).aggregate(n=Sum("calls"))["n"]
    fresh = [graph_row(str(uuid.uuid4()), userPrincipalName="ana@contoso.com",
                       calleeNumber="+33123456789") for _ in range(100)]
    result = calls_ingest(organization=org, rows=rows[:100] + fresh, source="api")
    assert (result.accepted, result.duplicates, result.charged) == (100, 100, 100)
    assert LedgerEntry.objects.filter(account=account).count() == before + 100
    calls_after = UsageRollup.objects.filter(organization=org).aggregate(n=Sum("calls"))["n"]
    assert calls_after == calls_before + 100


def _assert_lookups_probe_unique_indexes(org, account) -> None:
    calls, ledger = CallRecord._meta.db_table, LedgerEntry._meta.db_table
    for batch in (1000, 10_000):
        # Stored ids, every spelling of a GUID (`ingest.id_spellings`).
        ids = _ids(org, batch, stored=batch // 10)
        spellings = [s for i in ids
                     for s in (i, i.upper(), "{" + i + "}", "{" + i.upper() + "}")]
        scans = _plan_scans(existing_values_pg_sql(CallRecord, "graph_id", "organization_id"),
                            [pg_text_array(spellings), org.pk])
        _assert_unique_index_probes(scans, calls, "callrecord_unique_graph_id")
        assert _stored_ids(org, ids) == set(ids[:batch // 10])

        # The ledger's charge keys.
        have = list(LedgerEntry.objects.filter(account=account, kind="usage")
                    .order_by("-id").values_list("idempotency_key", flat=True)[:batch // 10])
        keys = have + [f"call:{uuid.uuid4()}" for _ in range(batch - len(have))]
        scans = _plan_scans(existing_values_pg_sql(LedgerEntry, "idempotency_key",
                                                   "account_id"),
                            [pg_text_array(keys), account.pk])
        _assert_unique_index_probes(scans, ledger, "ledger_unique_key_per_account")
        assert existing_values(LedgerEntry, "idempotency_key", keys,
                               scope_column="account_id", scope_id=account.pk) == set(have)

        # The batch read back for the rollups.
        sql, params = pg.rollups_add_stored_statement(
            organization=org, graph_ids=_ids(org, batch, stored=batch))
        _assert_unique_index_probes(_plan_scans(sql, params), calls,
                                    "callrecord_unique_graph_id")


def test_the_apps_connections_compile_no_statement_with_jit():
    """PostgreSQL JIT-compiles a statement estimated past jit_above_cost. A file batch's
    rollup statement (10,000 index probes) is, once the calls table has statistics from a
    few imported batches, and compiling it took ~0.9 s where running it takes ~0.1 s: an
    import of 100,000 calls into a new database ran at 5,700 rows/s instead of 11,000.
    config.settings turns JIT off for the app's connections."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
