"""Usage benchmarks (DESIGN.md section 10), run by `make bench` on PostgreSQL:

- `rating_calls_per_s`: the pure rating engine (usage.rating.rate_call) on generated calls;
- `ingest_rows_per_s`: Graph rows (JSON bodies of 1000 rows) parsed, validated, rated,
  stored and charged through `usage.services.calls_ingest`, the API's own path, one batch
  per transaction;
- `ingest_vs_copy_ratio`: the above / PostgreSQL COPY of the same rows (the Graph fields,
  typed) into a bare table (no index, no constraint), one transaction per batch, in the same
  run. The bare table is an ordinary, logged table: ingestion must be durable (a batch the
  API acknowledged cannot vanish in a crash), so the baseline pays the same WAL flush at
  commit. The COPY into a temporary table (not logged, nothing flushed at commit) is
  printed as a comment beside it;
- `authorize_vs_hello_ratio`: POST /api/v1/calls/authorize requests/s / GET of a trivial
  Django view, both through Django's test Client (the full middleware stack, in process, no
  network), alternating in one loop so both see the same machine state;
- `authorize_pool_vs_hello_ratio`: the same for a call a plan's pool pays (a domestic call
  of a person under a calling plan), in the same loop;
- `authorize_p99_ms`: p99 latency of authorize (both paths in turn) under 4 concurrent
  clients, threads of this process each with its own database connection.
"""

import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.http import HttpResponse
from django.test import Client
from django.test.utils import override_settings
from django.urls import clear_url_caches, path

RATING_CALLS = 200_000
INGEST_BATCHES = 40
BATCH = 1000
AUTHORIZE_ROUNDS = 1500
AUTHORIZE_CLIENTS = 4
AUTHORIZE_CONCURRENT_REQUESTS = 500


def hello(request):
    return HttpResponse("hello")


def _urlpatterns():
    from config.urls import urlpatterns as main

    return [path("bench/hello/", hello), *main]


urlpatterns = _urlpatterns()

CALLEES = {
    "US": [(55, "+1212", 7), (10, "+1416", 7), (10, "+331", 8), (8, "+447", 9),
           (5, "+4930", 8), (2, "+33895", 6), (10, "+1800", 7)],
    "FR": [(50, "+331", 8), (25, "+336", 8), (10, "+4420", 8), (10, "+1212", 7),
           (5, "+33895", 6)],
    "GB": [(50, "+4420", 8), (25, "+447", 9), (15, "+331", 8), (10, "+1617", 7)],
}
PLANS = [("MCOEV", "MCOPSTN1", "MCOPSTNC"), ("MCOEV", "MCOPSTN2", "MCOMEETADD", "MCOPSTNC"),
         ("MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC"), ("MCOEV", "MCOPSTN1", "MCOMEETADD")]


def _number(rng, country):
    options = CALLEES[country]
    total = sum(w for w, _p, _n in options)
    x = rng.uniform(0, total)
    chosen = options[-1]
    for option in options:
        x -= option[0]
        if x <= 0:
            chosen = option
            break
    _w, prefix, digits = chosen
    return prefix + str(rng.randrange(10 ** (digits - 1), 10 ** digits))


def _graph_rows(rng, people, count, start):
    rows = []
    for i in range(count):
        upn, country = rng.choice(people)
        callee = _number(rng, country)
        if callee.startswith("+1800"):
            kind = "ucap_in"
        else:
            kind = rng.choices(["user_out", "user_in", "conf_out", "user_out_transfer"],
                               [60, 25, 10, 5])[0]
        duration = 0 if rng.random() < 0.05 else rng.randint(5, 1800)
        at = start + timedelta(seconds=i * 2)
        rows.append({
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "callId": f"{rng.getrandbits(32)}_{rng.getrandbits(24)}@10.0.0.1",
            "userId": None, "userPrincipalName": upn, "userDisplayName": upn.split("@")[0],
            "startDateTime": at.isoformat().replace("+00:00", "Z"),
            "endDateTime": (at + timedelta(seconds=duration)).isoformat().replace("+00:00",
                                                                                    "Z"),
            "duration": duration, "charge": 0.0, "callType": kind, "currency": "USD",
            "calleeNumber": callee, "callerNumber": "+14255550100",
            "usageCountryCode": country, "tenantCountryCode": "US",
            "connectionCharge": 0.0, "destinationContext": None, "destinationName": "",
            "conferenceId": None, "licenseCapability": "MCOPSTNU",
            "inventoryType": "TollFree" if kind == "ucap_in" else "Subscriber",
            "operator": "Microsoft", "callDurationSource": "microsoft",
        })
    return rows


def _setup():
    from credits.models import LicenseAssignment
    from credits.platform.services import Actor, organization_create, person_create
    from credits.services.ledger import credits_adjust
    from credits.services.licenses import license_assign, subscription_ensure_seats
    from usage.decks import parse_deck
    from usage.demo import DECK_FILE
    from usage.services import api_token_create, rate_deck_load

    actor = Actor.system("bench")
    org = organization_create(name="Bench", slug=f"bench-{uuid.uuid4().hex[:8]}", country="US",
                              currency="USD", actor=actor)
    rates, errors = parse_deck(DECK_FILE.read_bytes(), "USD")
    assert not errors
    rate_deck_load(organization=org, rates=rates, actor=actor)
    for sku in ("MCOEV", "MCOPSTN1", "MCOPSTN2", "MCOPSTN_PAYG_1", "MCOMEETADD"):
        subscription_ensure_seats(organization=org, sku=sku, seats=200, actor=actor)
    people = []
    for i in range(60):
        country = ("US", "US", "FR", "GB")[i % 4]
        p = person_create(organization=org, display_name=f"Bench {i}",
                          upn=f"bench{i}@bench.example", usage_location=country, actor=actor)
        for sku in PLANS[i % len(PLANS)]:
            license_assign(person=p, sku=sku, actor=actor)
        people.append((p.upn, country))
    LicenseAssignment.objects.filter(organization=org).update(
        assigned_at=datetime(2020, 1, 1, tzinfo=UTC))
    # Plenty of funds: no crossing of a threshold, no auto-recharge during the measure.
    credits_adjust(organization=org, amount=Decimal("90000"), reason="bench", actor=actor,
                   key="bench-funds")
    _t, token = api_token_create(organization=org, name="bench", actor=actor)
    return org, people, token


def bench_rating(rng, people) -> float:
    from usage import rating
    from usage.decks import parse_deck
    from usage.demo import DECK_FILE

    rates, _errors = parse_deck(DECK_FILE.read_bytes(), "USD")
    deck = rating.RateDeck(rates, "USD")
    start = datetime(2026, 11, 2, tzinfo=UTC)
    pools = {("domestic", "US"): 10 ** 9, ("international", "US"): 600,
             ("domestic", "FR"): 1200, ("conference", ""): 300}
    calls = []
    for row in _graph_rows(rng, people, RATING_CALLS, start):
        plan = PLANS[rng.randrange(len(PLANS))]
        calls.append(rating.Call(row["callType"], row["callerNumber"], row["calleeNumber"],
                                 start, row["duration"], row["usageCountryCode"],
                                 frozenset(plan), row["inventoryType"]))
    rate_call = rating.rate_call
    began = time.perf_counter()
    for call in calls:
        rate_call(call, deck, pools)
    return len(calls) / (time.perf_counter() - began)


def bench_ingest(org, rng, people) -> tuple[float, float]:
    from usage.services import calls_ingest

    start = datetime.now(UTC) - timedelta(days=2)
    bodies = [json.dumps({"value": _graph_rows(rng, people, BATCH,
                                               start + timedelta(minutes=b))}).encode()
              for b in range(INGEST_BATCHES)]
    # One warm-up batch (caches of the deck and of phonenumbers), not counted.
    warm = json.dumps({"value": _graph_rows(rng, people, BATCH, start - timedelta(days=1))})
    calls_ingest(organization=org, rows=json.loads(warm)["value"], source="api")
    began = time.perf_counter()
    accepted = 0
    for body in bodies:
        result = calls_ingest(organization=org, rows=json.loads(body)["value"], source="api")
        accepted += result.accepted
    ingest_rate = accepted / (time.perf_counter() - began)
    assert accepted == INGEST_BATCHES * BATCH, accepted

    # COPY of the same rows (Graph's fields, typed columns) into a bare table.
    columns = ["id", "callId", "userId", "userPrincipalName", "userDisplayName",
               "startDateTime", "endDateTime", "duration", "charge", "callType", "currency",
               "calleeNumber", "callerNumber", "usageCountryCode", "tenantCountryCode",
               "connectionCharge", "destinationContext", "destinationName", "conferenceId",
               "licenseCapability", "inventoryType", "operator", "callDurationSource"]
    types = {"startDateTime": "timestamptz", "endDateTime": "timestamptz",
             "duration": "integer", "charge": "numeric", "connectionCharge": "numeric"}
    ddl = ", ".join(f'"{c}" {types.get(c, "text")}' for c in columns)
    sql = "COPY bench_copy ({}) FROM STDIN".format(", ".join(f'"{c}"' for c in columns))
    rates = {}
    with connection.cursor() as cursor:
        for kind in ("TABLE", "TEMP TABLE"):
            cursor.execute(f"CREATE {kind} bench_copy ({ddl})")
            began = time.perf_counter()
            copied = 0
            for body in bodies:
                rows = json.loads(body)["value"]
                # One transaction per batch, like ingestion.
                with transaction.atomic(), cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row([row[c] for c in columns])
                copied += len(rows)
            rates[kind] = copied / (time.perf_counter() - began)
            cursor.execute("DROP TABLE bench_copy")
    print(f"# usage: COPY into a temporary table (not logged) {rates['TEMP TABLE']:.0f} "
          f"rows/s; ingest / that = {ingest_rate / rates['TEMP TABLE']:.3f}", file=sys.stderr)
    return ingest_rate, rates["TABLE"]


def _authorize_post(client, body, auth):
    return client.post("/api/v1/calls/authorize", body, content_type="application/json",
                       **auth)


def bench_authorize(org, token, people) -> dict[str, float]:
    """Requests/s of authorize on the credits path (an international call, no plan covers
    it), on the pool path (a domestic call of a person under a calling plan: the plan's
    pool pays) and of the trivial view, alternating in one loop; then the p99 latency of
    authorize (both paths in turn) under AUTHORIZE_CLIENTS concurrent clients, each a
    thread with its own connection."""
    upn = next(u for u, c in people if c == "US")  # bench0: MCOPSTN1, a domestic plan
    credits_body = {"userPrincipalName": upn, "calleeNumber": "+33123456789",
                    "callType": "user_out"}
    pool_body = {"userPrincipalName": upn, "calleeNumber": "+12125550123",
                 "callType": "user_out"}
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    with override_settings(ROOT_URLCONF=__name__, DEBUG=False,
                           API_RATE_LIMIT_PER_MINUTE=10 ** 9):
        clear_url_caches()
        try:
            for body, paid_by in ((credits_body, "credits"), (pool_body, "plan_pool")):
                first = _authorize_post(client, body, auth)
                assert first.status_code == 200 and first.json()["allowed"], first.content
                assert first.json()["chargedTo"] == paid_by, first.content
            assert client.get("/bench/hello/").status_code == 200
            for _ in range(100):  # warm-up, not counted: caches, connections, lazy imports
                _authorize_post(client, credits_body, auth)
                _authorize_post(client, pool_body, auth)
                client.get("/bench/hello/")
            t_credits = t_pool = t_hello = 0.0
            for _ in range(AUTHORIZE_ROUNDS):
                began = time.perf_counter()
                _authorize_post(client, credits_body, auth)
                t_credits += time.perf_counter() - began
                began = time.perf_counter()
                _authorize_post(client, pool_body, auth)
                t_pool += time.perf_counter() - began
                began = time.perf_counter()
                client.get("/bench/hello/")
                t_hello += time.perf_counter() - began
            p99 = _authorize_p99_ms([credits_body, pool_body], auth)
        finally:
            clear_url_caches()
    return {"credits": AUTHORIZE_ROUNDS / t_credits, "pool": AUTHORIZE_ROUNDS / t_pool,
            "hello": AUTHORIZE_ROUNDS / t_hello, "p99_ms": p99}


def _authorize_p99_ms(bodies, auth) -> float:
    """p99 of authorize's latency with AUTHORIZE_CLIENTS clients sending at once, each
    AUTHORIZE_CONCURRENT_REQUESTS requests (the paths in turn) after a warm-up."""
    from django.db import connections

    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(AUTHORIZE_CLIENTS)
    failures: list[BaseException] = []

    def client_loop():
        client = Client()
        mine = []
        try:
            for i in range(20):
                _authorize_post(client, bodies[i % len(bodies)], auth)
            start.wait()
            for i in range(AUTHORIZE_CONCURRENT_REQUESTS):
                began = time.perf_counter()
                response = _authorize_post(client, bodies[i % len(bodies)], auth)
                mine.append(time.perf_counter() - began)
                assert response.status_code == 200, response.content
        except BaseException as exc:  # handed to the main thread below
            failures.append(exc)
            start.abort()
        finally:
            connections.close_all()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client_loop) for _ in range(AUTHORIZE_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    latencies.sort()
    return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000


def run() -> dict[str, float]:
    from django.conf import settings

    from config.celery import app

    rng = random.Random(20261127)
    org, people, token = _setup()
    # As in production: tasks (event dispatch, auto-recharge checks) are enqueued on the
    # broker after commit, not run inline inside the measured request or batch (the test
    # settings run them eagerly). Without a broker URL they stay eager.
    eager = app.conf.task_always_eager
    if settings.CELERY_BROKER_URL.startswith("redis"):
        app.conf.task_always_eager = False
    try:
        rating_rate = bench_rating(rng, people)
        # Before ingestion, which would use up the plans' pools this month.
        authorize = bench_authorize(org, token, people)
        ingest_rate, copy_rate = bench_ingest(org, rng, people)
    finally:
        if not app.conf.task_always_eager:
            app.control.purge()  # nobody consumes the benchmark's messages
        app.conf.task_always_eager = eager
    print(f"# usage: ingest {ingest_rate:.0f} rows/s, COPY {copy_rate:.0f} rows/s, "
          f"authorize {authorize['credits']:.0f} req/s (pool path "
          f"{authorize['pool']:.0f}), hello {authorize['hello']:.0f} req/s "
          f"({connection.vendor})", file=sys.stderr)
    return {
        "ingest_rows_per_s": ingest_rate,
        "ingest_vs_copy_ratio": ingest_rate / copy_rate,
        "rating_calls_per_s": rating_rate,
        "authorize_vs_hello_ratio": authorize["credits"] / authorize["hello"],
        "authorize_pool_vs_hello_ratio": authorize["pool"] / authorize["hello"],
        "authorize_p99_ms": authorize["p99_ms"],
    }
