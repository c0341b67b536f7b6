"""Ingestion as history grows, and file imports against the API path (DESIGN.md section 10),
run by `make bench` on PostgreSQL:

- `ingest_history_ratio`: ingestion rows/s (`usage.services.calls_ingest`, batches of 1000
  Graph rows, the API's path) into an organization holding HISTORY_CALLS stored calls (and
  their ledger entries) / into an organization with none, batches alternating between the
  two so both see the same machine state. The history is built once per run by the
  database itself (`INSERT ... SELECT` over `generate_series`, copies of one ingested batch
  under new GUIDs), not through the ingest path, then ANALYZEd as autovacuum would;
- `import_vs_ingest_ratio`: `manage.py import_pstn_calls` of Microsoft's CSV export of
  IMPORT_ROWS calls, in this process, rows/s / the API path's rows/s above (the empty
  organization's).
"""

import io
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management import call_command
from django.db import connection

HISTORY_CALLS = 1_000_000
BATCHES = 20
IMPORT_ROWS = 100_000


def build_history(org, people, calls: int) -> None:
    """`calls` stored calls (and a ledger entry for each charged one) for `org`: one batch
    ingested the ordinary way, then copied by the database under new GUIDs, a day earlier
    per copy."""
    from credits.models import CreditAccount, LedgerEntry
    from tests.benchmarks.bench_usage import BATCH, _graph_rows
    from usage.models import CallRecord
    from usage.services import calls_ingest

    rng = random.Random(20261201)
    start = datetime.now(UTC) - timedelta(days=400)
    calls_ingest(organization=org, rows=_graph_rows(rng, people, BATCH, start), source="api")
    copies = calls // BATCH - 1
    table = CallRecord._meta.db_table
    columns = [f.column for f in CallRecord._meta.concrete_fields if f.column != "id"]
    values = [{"graph_id": "md5(c.graph_id || g)::uuid::text",
               "start_at": "c.start_at - g * interval '1 hour'",
               "end_at": "c.end_at - g * interval '1 hour'"}.get(col, f"c.{col}")
              for col in columns]
    ledger = LedgerEntry._meta.db_table
    account = CreditAccount.objects.get(organization=org)
    ledger_columns = [f.column for f in LedgerEntry._meta.concrete_fields
                      if f.column != "id"]
    ledger_values = [{"idempotency_key": "'call:' || md5(substr(e.idempotency_key, 6) || g)"
                      "::uuid::text"}.get(col, f"e.{col}") for col in ledger_columns]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "
            f"FROM {table} c CROSS JOIN generate_series(1, %s) g "
            f"WHERE c.organization_id = %s", [copies, org.pk])
        cursor.execute(
            f"INSERT INTO {ledger} ({', '.join(ledger_columns)}) "
            f"SELECT {', '.join(ledger_values)} "
            f"FROM {ledger} e CROSS JOIN generate_series(1, %s) g "
            f"WHERE e.account_id = %s AND e.kind = 'usage'", [copies, account.pk])
        cursor.execute(f"ANALYZE {table}")
        cursor.execute(f"ANALYZE {ledger}")


def bench_history(empty_org, history_org, people) -> tuple[float, float]:
    """Rows/s into the empty organization, and into the one with history."""
    from tests.benchmarks.bench_usage import BATCH, _graph_rows
    from usage.services import calls_ingest

    rng = random.Random(20261202)
    start = datetime.now(UTC) - timedelta(days=2)
    bodies = [json.dumps({"value": _graph_rows(rng, people, BATCH,
                                               start + timedelta(minutes=b))}).encode()
              for b in range(2 * BATCHES + 2)]
    spent = {empty_org.pk: 0.0, history_org.pk: 0.0}
    for b, body in enumerate(bodies):
        org = (empty_org, history_org)[b % 2]
        began = time.perf_counter()
        result = calls_ingest(organization=org, rows=json.loads(body)["value"], source="api")
        if b >= 2:  # one warm-up batch each, not counted
            spent[org.pk] += time.perf_counter() - began
        assert result.accepted == BATCH, result
    rows = BATCHES * BATCH
    return rows / spent[empty_org.pk], rows / spent[history_org.pk]


def bench_import(org, people) -> float:
    """Rows/s of `import_pstn_calls` on Microsoft's CSV export of IMPORT_ROWS calls."""
    from tests.benchmarks.bench_import import write_export_csv

    rng = random.Random(20261203)
    start = (datetime.now(UTC) - timedelta(days=20)).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "PSTN.calls.csv"
        with open(path, "w", encoding="utf-8", newline="") as text:
            write_export_csv(text, rng, people, IMPORT_ROWS, start)
        out = io.StringIO()
        began = time.perf_counter()
        call_command("import_pstn_calls", str(path), "--org", org.slug, stdout=out)
        seconds = time.perf_counter() - began
    summary = out.getvalue().splitlines()[0]
    assert summary.startswith(f"PSTN: imported {IMPORT_ROWS}, "), summary
    return IMPORT_ROWS / seconds


def run() -> dict[str, float]:
    from django.conf import settings

    from config.celery import app
    from tests.benchmarks.bench_usage import _setup

    if connection.vendor != "postgresql":
        raise RuntimeError("the history benchmark needs PostgreSQL")
    empty_org, people, _token = _setup()
    history_org, history_people, _token = _setup()
    import_org, import_people, _token = _setup()
    assert [u.split("@")[0] for u, _c in people] == [u.split("@")[0] for u, _c in
                                                     history_people]
    # As bench_usage: tasks go to the broker after commit, as in production.
    eager = app.conf.task_always_eager
    if settings.CELERY_BROKER_URL.startswith("redis"):
        app.conf.task_always_eager = False
    try:
        began = time.perf_counter()
        build_history(history_org, history_people, HISTORY_CALLS)
        built = time.perf_counter() - began
        # Both organizations have the same people under the same UPNs.
        empty_rate, history_rate = bench_history(empty_org, history_org, people)
        import_rate = bench_import(import_org, import_people)
    finally:
        if not app.conf.task_always_eager:
            app.control.purge()
        app.conf.task_always_eager = eager
    print(f"# history: {HISTORY_CALLS} calls built in {built:.0f} s; ingest {empty_rate:.0f} "
          f"rows/s into an empty organization, {history_rate:.0f} into one with history; "
          f"import_pstn_calls {import_rate:.0f} rows/s", file=sys.stderr)
    return {
        "ingest_history_ratio": history_rate / empty_rate,
        "import_vs_ingest_ratio": import_rate / empty_rate,
    }
