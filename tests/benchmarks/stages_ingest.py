"""Where an ingestion batch's time goes: milliseconds per batch for each stage of
`usage.services.calls_ingest`, on the `make bench` data (not part of `make bench`).

    DATABASE_URL=postgres://... .venv/bin/python -m tests.benchmarks.stages_ingest [BATCHES]

Each stage is timed by wrapping the function `calls_ingest` calls (and psycopg's commit), so
the figures add up to the batch's time with the rows loop of `calls_ingest` as the rest. The
wrappers cost a little; compare stages within one run, not against `make bench`.
"""

import functools
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

# Functions of usage.services (as it imported them), and of the modules it calls through
# (the rating engine, the PostgreSQL fast paths), by name.
SERVICE_STAGES = ("credit_account_lock", "_stored_ids", "rate_deck_for", "_people_index",
                  "_skus_by_day", "pools_take_minutes", "_insert", "rollups_add_calls",
                  "credits_charge_usage_batch", "audit_record")
PYTHON_STAGES = (("usage.ingest", "parse_row"), ("usage.rating", "assess"),
                 ("usage.rating", "settle"), ("usage.pg", "rollups_add_stored"))


def _timed(spent: dict, module, name: str) -> None:
    function = getattr(module, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - began

    setattr(module, name, wrapper)


def main(batches: int) -> None:
    import importlib

    import psycopg

    from config.celery import app
    from tests.benchmarks import bench_usage
    from usage import services

    app.conf.task_always_eager = False  # as in production: tasks go to the broker
    org, people, _token = bench_usage._setup()
    rng = random.Random(20261127)
    start = datetime.now(UTC) - timedelta(days=2)
    bodies = [json.dumps({"value": bench_usage._graph_rows(
        rng, people, bench_usage.BATCH, start + timedelta(minutes=i))}).encode()
        for i in range(batches + 1)]
    services.calls_ingest(organization=org, rows=json.loads(bodies[0])["value"], source="api")

    spent: dict[str, float] = {}
    for name in SERVICE_STAGES:
        _timed(spent, services, name)
    for module_name, name in PYTHON_STAGES:
        _timed(spent, importlib.import_module(module_name), name)
    _timed(spent, psycopg.Connection, "commit")
    began = time.perf_counter()
    for body in bodies[1:]:
        t = time.perf_counter()
        rows = json.loads(body)["value"]
        spent["json.loads"] = spent.get("json.loads", 0.0) + time.perf_counter() - t
        services.calls_ingest(organization=org, rows=rows, source="api")
    total = time.perf_counter() - began
    app.control.purge()
    print(f"total {total / batches * 1000:.1f} ms per batch of {bench_usage.BATCH} "
          f"({batches * bench_usage.BATCH / total:.0f} rows/s)")
    for name, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:28s} {seconds / batches * 1000:7.1f} ms")
    print(f"  {'(the rows loop, the rest)':28s} "
          f"{(total - sum(spent.values())) / batches * 1000:7.1f} ms")


if __name__ == "__main__":
    from tests.benchmarks.run import throwaway_database

    with throwaway_database():
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
