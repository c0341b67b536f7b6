"""Fault: PostgreSQL restarts under a running web (gunicorn) and worker.

The app runs against a private cluster (a copy of the test database) so that stopping it
touches nothing else. While the database is down, every request answers within a bound
with a clean 503 (a JSON error from the API, a short page from the site, /healthz naming
the database), never a hang or a traceback. Once it is back, the same processes (not
restarted) serve pages, take calls and recharge through the worker."""

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from credits.models import LicenseAssignment
from credits.platform.services import Actor
from credits.services.recharges import auto_recharge_configure
from tests.conftest import requires_postgres, requires_redis
from tests.factories import (
    OrganizationFactory,
    PersonFactory,
    funded_account,
    give_licenses,
    graph_row,
    load_test_deck,
    saved_card,
)
from usage.services import api_token_create

from .faults_support import (
    Processes,
    database_url,
    eager_celery,  # noqa: F401 - a fixture, used by pytestmark
    send_task,
    session_cookie,
    wait_until,
)

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("eager_celery")]

DOWN_S = 6  # how long requests are sent while the database is down
BOUND_S = 10  # no request may take longer than this


def _batch(tag: str, upn: str, n: int = 20, minutes: int = 1) -> list[dict]:
    start = datetime(2026, 11, 3, 8, tzinfo=UTC)
    return [graph_row(f"pg-{tag}-{i}", userPrincipalName=upn, calleeNumber="+97142345678",
                      duration=60 * minutes,
                      startDateTime=(start + timedelta(seconds=i)).isoformat())
            for i in range(n)]


def test_postgres_restart_fails_cleanly_and_recovers_without_restarting_the_app(
        tmp_path, reliability):
    survived = False
    try:
        org = OrganizationFactory(country="US", currency="USD")
        load_test_deck(org)
        admin = PersonFactory(organization=org, roles=["global_administrator"], with_user=True)
        caller = PersonFactory(organization=org, usage_location="US")
        give_licenses(caller, "MCOEV", "MCOPSTN1", "MCOPSTNC")
        LicenseAssignment.objects.filter(person=caller).update(
            assigned_at=datetime(2026, 10, 1, tzinfo=UTC))
        funded_account(org, "100.00")
        auto_recharge_configure(organization=org, enabled=True, amount=Decimal(50),
                                trigger=Decimal(50), payment_method=saved_card(org),
                                actor="tests")
        _t, token = api_token_create(organization=org, name="switch",
                                     actor=Actor.system("tests"))
        cookie = {"Cookie": session_cookie(admin.user)}
        api = {"Authorization": f"Bearer {token}"}

        with Processes(tmp_path) as procs:
            cluster = procs.postgres()
            url = cluster.copy_database(database_url(), "cc_faults")
            redis = procs.redis()
            env = procs.app_env(database_url=url, redis_url=redis.url)
            web = procs.web(env)
            worker = procs.worker(env)
            web_pid, worker_pid = web.proc.pid, worker.pid

            assert web.request("GET", "/healthz")[0] == 200
            status, body, _s, _h = web.request("POST", "/api/v1/pstn-calls",
                                               body={"value": _batch("before", caller.upn)},
                                               headers=api)
            assert status == 200, body
            assert web.request("GET", "/billing/communications-credits/",
                               headers=cookie)[0] == 200
            # The worker holds a database connection (CONN_MAX_AGE) when the restart comes.
            send_task(redis.url, "credits.tasks.dispatch_pending_events")
            wait_until(lambda: "dispatch_pending_events" in worker.log(100000), timeout=20,
                       what="the worker's first task")

            # --- the database goes away --------------------------------------------------
            cluster.stop_server("fast")
            send_task(redis.url, "credits.tasks.auto_recharge_sweep")  # fails, worker lives
            seen, slowest, n = [], 0.0, 0
            stop_at = time.monotonic() + DOWN_S
            while time.monotonic() < stop_at:
                n += 1
                for method, path, kwargs in [
                    ("GET", "/healthz", {}),
                    ("GET", "/billing/communications-credits/", {"headers": cookie}),
                    ("GET", "/", {"headers": cookie}),
                    ("POST", "/api/v1/pstn-calls",
                     {"body": {"value": _batch(f"down{n}", caller.upn)}, "headers": api}),
                    ("GET", "/api/v1/credits/balance", {"headers": api}),
                ]:
                    status, body, seconds, headers = web.request(method, path,
                                                                 timeout=BOUND_S + 5, **kwargs)
                    slowest = max(slowest, seconds)
                    seen.append((path, status))
                    assert seconds < BOUND_S, (path, seconds)
                    assert status == 503, (path, status, body[:500])
                    assert b"Traceback" not in body
                    if path == "/healthz":
                        assert json.loads(body)["down"] == ["database"]
                        continue
                    assert b"OperationalError" not in body
                    if path.startswith("/api/"):
                        assert json.loads(body)["code"] == "unavailable", body
                        assert headers.get("Retry-After")
                    else:
                        assert b"<h1>" in body
                time.sleep(0.2)

            # --- back, without restarting web or worker ----------------------------------
            cluster.start()
            restarted_at = time.monotonic()
            wait_until(lambda: web.request("GET", "/healthz")[0] == 200, timeout=30,
                       interval=0.25, what="/healthz after the restart")
            recovered_s = time.monotonic() - restarted_at
            for path in ["/", "/billing/communications-credits/", "/reports/pstn-usage/"]:
                assert web.request("GET", path, headers=cookie)[0] == 200, path
            # 80 calls of 5 minutes (0.75 each, 60.00) take 97.00 below the trigger of 50.
            for part in range(4):
                status, body, _s, _h = web.request(
                    "POST", "/api/v1/pstn-calls",
                    body={"value": _batch(f"after{part}", caller.upn, minutes=5)}, headers=api)
                assert status == 200 and json.loads(body)["accepted"] == 20, body

            def recharged():
                with psycopg.connect(url) as conn:
                    return conn.execute(
                        "SELECT count(*) FROM credits_ledgerentry WHERE kind = 'auto_recharge'"
                    ).fetchone()[0]

            try:
                wait_until(recharged, timeout=30, interval=0.5, what="the worker's recharge")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{worker.log()}") from None
            assert (web.proc.pid, worker.pid) == (web_pid, worker_pid)
            assert web.proc.alive() and worker.alive()
            with psycopg.connect(url) as conn:
                calls = conn.execute("SELECT count(*), count(DISTINCT graph_id) FROM "
                                     "usage_callrecord").fetchone()
                balance, ledger = conn.execute(
                    "SELECT a.balance, (SELECT sum(amount) FROM credits_ledgerentry e "
                    "WHERE e.account_id = a.id) FROM credits_creditaccount a").fetchone()
                recharges = conn.execute("SELECT count(*) FROM credits_rechargeattempt"
                                         ).fetchone()[0]
            # The calls of the good times, none of the refused ones, each once.
            assert calls == (100, 100)
            assert balance == ledger == Decimal("100.00") - Decimal("3.00") \
                - Decimal("60.00") + Decimal("50.00")
            assert recharged() == recharges == 1
        print(f"\npostgres restart: {len(seen)} requests while down, all 503, slowest "
              f"{slowest:.2f} s; healthy {recovered_s:.1f} s after the restart; "
              "same web and worker processes; 1 recharge after")
        survived = True
    finally:
        reliability.fault(survived=survived)
