"""Report and export benchmarks (DESIGN.md section 10), run by `make bench` on
PostgreSQL:

- `report_scaling_ratio`: median time of a report page (28 days, no filter, the full page
  through Django's test Client) with 1M calls in the table / with 10k, the worse of the PSTN
  usage page (`pstn_report_scaling_ratio`) and the Reconciliation page
  (`reconciliation_scaling_ratio`, with its largest differences). The same organization and
  300 people; the 990k extra calls are added to the same 28 days, so the big case has 100
  times the calls of the small one in the range shown.
- `xlsx_vs_raw_ratio`: rows/s of the Excel export of ~215k calls (6 days) / rows/s of
  XlsxWriter writing the same rows (already typed, from memory) with the same cell calls.
- `export_peak_rss_mb`: peak resident memory of a fresh process exporting all 1M calls to
  xlsx (VmHWM of the child: Django, the workbook and the streaming cursor).
- `csv_vs_copy_ratio`: rows/s of the CSV zip export of the 1M calls / rows/s of PostgreSQL
  `COPY (SELECT the 20 columns ... ORDER BY start_at, id) TO STDOUT` of the same rows.

Calls are generated in SQL (generate_series) straight into the call table; the rollups are
then rebuilt from them (rollups_rebuild), as the repair command would.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import connection

SMALL = 10_000
BIG = 1_000_000
PEOPLE = 300
WINDOW_S = 28 * 86400 - 3600
DESTINATIONS = [
    "France", "Germany", "United Kingdom", "Spain", "Italy", "Belgium", "Netherlands",
    "Switzerland", "Austria", "Sweden", "Norway", "Denmark", "Finland", "Poland", "Portugal",
    "Ireland", "Canada", "United States", "Mexico", "Brazil", "Japan", "India", "China",
    "Australia", "South Africa", "Morocco", "Egypt", "Turkey", "Greece", "Israel",
]


def _ensure_tables():
    """The report's tables, in case the throw-away database was migrated before their
    migration existed."""
    from usage import models as usage_models

    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in (usage_models.UsageRollup, usage_models.UsagePersonDay,
                      usage_models.UsageDestinationRollup, usage_models.Export,
                      usage_models.ReportColumnPreference, usage_models.ReconciliationRollup,
                      usage_models.ReconciliationTopCall):
            if model._meta.db_table not in existing:
                editor.create_model(model)


def _setup():
    from credits.models import Organization, Person, PersonRole, User

    org = Organization.objects.create(name="Bench Reports", slug="bench-reports",
                                      country="US", currency="USD", billing_region="US")
    Person.objects.bulk_create([
        Person(organization=org, display_name=f"User {i:04d}", upn=f"user{i}@bench.example",
               usage_location="US") for i in range(PEOPLE)
    ])
    user = User.objects.create_user("bench-admin@bench.example", "pass-word-123")
    admin = Person.objects.create(organization=org, display_name="Bench Admin",
                                  upn="bench-admin@bench.example", user=user)
    PersonRole.objects.create(person=admin, role="billing_administrator")
    first_id = Person.objects.filter(organization=org, upn="user0@bench.example").get().pk
    return org, user, first_id


def _literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return "now()"
    return "'" + str(value).replace("'", "''") + "'"


def _generate(org, first_id, start: int, stop: int, now: datetime) -> None:
    """Calls start..stop-1, spread over the 28 days before `now`. Columns this bench does
    not set get their model default, so a new column of the call table does not break it."""
    from usage.models import CallRecord

    names = "ARRAY[" + ", ".join(f"'{d}'" for d in DESTINATIONS) + "]"
    chosen = {
        "organization_id": "%(org)s", "graph_id": "'bench-' || i", "call_id": "'call-' || i",
        "person_id": f"%(first)s + (i %% {PEOPLE})",
        "upn": f"'user' || (i %% {PEOPLE}) || '@bench.example'",
        "user_display_name": f"'User ' || lpad((i %% {PEOPLE})::text, 4, '0')",
        "start_at": "ts", "end_at": "ts + make_interval(secs => dur)", "duration_s": "dur",
        "call_type": "(ARRAY['user_out', 'user_out', 'user_in', 'conf_out'])[1 + i %% 4]",
        "caller_number": "'+14255550100'",
        "callee_number": "'+33123' || lpad((i %% 1000000)::text, 6, '0')",
        "usage_country": "'US'", "tenant_country": "'US'",
        "destination_context": "CASE WHEN i %% 3 = 0 THEN 'Domestic' ELSE 'International' END",
        "destination_name": f"({names})[1 + (i / 7) %% {len(DESTINATIONS)}]",
        "inventory_type": "'Subscriber'", "operator": "'Microsoft'",
        "call_duration_source": "'microsoft'", "rated": "true",
        # Microsoft's reported charge: mostly ours, a cent off for every 11th call, and
        # every 97th call reported in euros (the reconciliation lists those apart).
        "currency": "CASE WHEN i %% 97 = 0 THEN 'EUR' ELSE 'USD' END",
        "reported_charge": "CASE WHEN i %% 3 = 0 THEN 0 ELSE round((dur + 59) / 60 * 0.05, 2) "
                           "END + CASE WHEN i %% 11 = 0 THEN 0.01 ELSE 0 END",
        "charged_to": "CASE WHEN i %% 3 = 0 THEN 'plan_pool' ELSE 'credits' END",
        "pool_minutes": "CASE WHEN i %% 3 = 0 THEN (dur + 59) / 60 ELSE 0 END",
        "credit_seconds": "CASE WHEN i %% 3 = 0 THEN 0 ELSE (dur + 59) / 60 * 60 END",
        "billable_seconds": "(dur + 59) / 60 * 60", "rate_prefix": "'33'",
        "rate_per_minute": "0.05000", "connection_fee": "0",
        "charge": "CASE WHEN i %% 3 = 0 THEN 0 ELSE round((dur + 59) / 60 * 0.05, 2) END",
        "capability": "CASE WHEN i %% 3 = 0 THEN 'MCOPSTN1' ELSE 'MCOPSTNPP' END",
        "destination_country": "'FR'", "source": "'import'", "ingested_at": "now()",
    }
    columns, exprs = [], []
    for f in CallRecord._meta.concrete_fields:
        if f.primary_key:
            continue
        columns.append(f.column)
        exprs.append(chosen.get(f.column) or _literal(f.get_default()))
    sql = f"""
    INSERT INTO {CallRecord._meta.db_table} ({", ".join(columns)})
    SELECT {", ".join(exprs)}
    FROM (SELECT i, %(now)s::timestamptz - make_interval(secs => (i::bigint * 7919) %% {WINDOW_S})
                 AS ts, 30 + (i * 37) %% 600 AS dur
          FROM generate_series(%(start)s, %(stop)s - 1) AS i) AS g
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"org": org.pk, "first": first_id, "start": start, "stop": stop,
                             "now": now})
        cursor.execute(f"ANALYZE {CallRecord._meta.db_table}")


def _page_time(client, url="/reports/pstn-usage/", rounds=15) -> float:
    for _ in range(3):
        assert client.get(url, {"range": "28"}).status_code == 200
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url, {"range": "28"})
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(times)


def _rebuild(org):
    from usage.rollups import rollups_rebuild

    rollups_rebuild(organization=org)
    with connection.cursor() as cursor:
        for table in ("usage_usagerollup", "usage_usagepersonday",
                      "usage_usagedestinationrollup", "usage_reconciliationrollup",
                      "usage_reconciliationtopcall"):
            cursor.execute(f"ANALYZE {table}")


def _job(org, start, end):
    from usage.exports import ExportJob
    from usage.report import ReportFilters

    return ExportJob(org, ReportFilters(start=start, end=end, range="custom"),
                     datetime.now(UTC), None, "bench")


def _xlsx_ratio(org, now, folder: Path) -> float:
    import xlsxwriter

    from usage import exports

    end = now.date()
    job = _job(org, end - timedelta(days=5), end)
    started = time.perf_counter()
    rows = exports.write_xlsx(folder / "subset.xlsx", job)
    export_rate = rows / (time.perf_counter() - started)
    # The same rows, typed, in memory; then written with the same cell calls.
    prepared = [exports.xlsx_cells(r, 0, "USD") for r in exports.stream_rows(job)]
    workbook = xlsxwriter.Workbook(str(folder / "raw.xlsx"), {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "tmpdir": str(folder)})
    started = time.perf_counter()
    fmt = exports.XlsxFormats(workbook, "USD")
    sheet = exports.start_usage_sheet(workbook, 1, fmt)
    for r, cells in enumerate(prepared, start=1):
        exports.write_cells(sheet, r, cells, fmt)
    workbook.close()
    raw_rate = len(prepared) / (time.perf_counter() - started)
    return export_rate / raw_rate


def _csv_ratio(org, now, folder: Path) -> float:
    from usage import exports

    end = now.date()
    job = _job(org, end - timedelta(days=28), end)
    started = time.perf_counter()
    rows = exports.write_csv_zip(folder / "calls.zip", job)
    export_rate = rows / (time.perf_counter() - started)
    columns = ("graph_id, call_id, conference_id, usage_country, user_id, upn, "
               "user_display_name, caller_number, call_type, inventory_type, "
               "destination_context, destination_name, callee_number, start_at, end_at, "
               "duration_s, connection_fee, charge, currency, capability")
    sql = (f"COPY (SELECT {columns} FROM usage_callrecord WHERE organization_id = {org.pk} "
           f"AND start_at >= '{job.filters.start_at.isoformat()}' "
           f"AND start_at < '{job.filters.end_before.isoformat()}' "
           f"ORDER BY start_at, id) TO STDOUT (FORMAT csv)")
    copied = 0
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for chunk in copy:
            copied += bytes(chunk).count(b"\n")
    copy_rate = copied / (time.perf_counter() - started)
    assert copied == rows, (copied, rows)
    return export_rate / copy_rate


_CHILD = """
import sys
from datetime import date
import django
django.setup()
from credits.models import Organization
from usage.exports import ExportJob, write_xlsx
from usage.report import ReportFilters
from django.utils import timezone
org = Organization.objects.get(slug="bench-reports")
start, end = date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2])
job = ExportJob(org, ReportFilters(start=start, end=end, range="custom"), timezone.now(),
                None, "bench")
rows = write_xlsx(sys.argv[3], job)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
with open("/proc/self/status") as status:
    hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
print(rows, hwm)
"""


def _export_peak_rss_mb(now, folder: Path) -> float:
    settings = connection.settings_dict
    url = (f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@"
           f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    end = now.date()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, (end - timedelta(days=28)).isoformat(),
         end.isoformat(), str(folder / "all.xlsx")],
        env=env, capture_output=True, text=True, check=True,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    rows, max_kb = out.stdout.split()[-2:]
    assert int(rows) == BIG, rows
    return int(max_kb) / 1024


def run() -> dict[str, float]:
    from django.test import Client

    if connection.vendor != "postgresql":
        raise RuntimeError("the report benchmarks need PostgreSQL")
    _ensure_tables()
    org, user, first_id = _setup()
    client = Client()
    client.force_login(user)
    now = datetime.now(UTC).replace(microsecond=0)

    reconciliation = "/reports/reconciliation/"
    _generate(org, first_id, 0, SMALL, now)
    _rebuild(org)
    small = _page_time(client)
    small_rec = _page_time(client, reconciliation)
    _generate(org, first_id, SMALL, BIG, now)
    _rebuild(org)
    big = _page_time(client)
    big_rec = _page_time(client, reconciliation)
    results = {"report_scaling_ratio": max(big / small, big_rec / small_rec),
               "pstn_report_scaling_ratio": big / small,
               "reconciliation_scaling_ratio": big_rec / small_rec,
               "report_page_ms_10k": small * 1000, "report_page_ms_1m": big * 1000,
               "reconciliation_page_ms_10k": small_rec * 1000,
               "reconciliation_page_ms_1m": big_rec * 1000}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["xlsx_vs_raw_ratio"] = _xlsx_ratio(org, now, folder)
        results["csv_vs_copy_ratio"] = _csv_ratio(org, now, folder)
        results["export_peak_rss_mb"] = _export_peak_rss_mb(now, folder)
    return results
