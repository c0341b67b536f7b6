"""Concurrent ingestion from several processes, with overlapping duplicates (PostgreSQL)."""

import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from credits.models import CreditAccount, LedgerEntry, MinutePool
from credits.platform.services import Actor
from tests.conftest import requires_postgres
from tests.factories import PersonFactory, graph_row, load_test_deck
from usage.models import CallRecord
from usage.services import api_token_create

from .conftest import fund, licensed

PROCESSES = 4
BATCHES_PER_PROCESS = 5
BATCH = 200


def _rows(people, count, rng):
    start = datetime(2026, 11, 2, 8, tzinfo=UTC)
    rows = []
    for i in range(count):
        who = rng.choice(people)
        callee = rng.choice(["+12125550100", "+14165550100", "+33123456789", "+33612345678",
                             "+442071234567", "+33951234567", "+18005550100"])
        kind = "ucap_in" if callee.startswith("+1800") else rng.choice(["user_out", "conf_out"])
        rows.append(graph_row(
            f"rel-{i}", userPrincipalName=who.upn, calleeNumber=callee, callType=kind,
            duration=rng.randint(0, 1800),
            startDateTime=(start + timedelta(seconds=17 * i)).isoformat(),
        ))
    return rows


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_and_charge_each_call_once(org, tmp_path):
    load_test_deck(org)
    fund(org, 500)
    people = [
        licensed(PersonFactory(organization=org, usage_location=c), *skus)
        for c, skus in [("US", ("MCOEV", "MCOPSTN1", "MCOPSTNC")),
                        ("US", ("MCOEV", "MCOPSTN2", "MCOMEETADD", "MCOPSTNC")),
                        ("FR", ("MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC")),
                        ("GB", ("MCOEV", "MCOPSTN1", "MCOMEETADD"))]
    ]
    _t, token = api_token_create(organization=org, name="rel", actor=Actor.system("test"))
    rng = random.Random(7)
    unique = PROCESSES * BATCHES_PER_PROCESS * int(BATCH * 0.8)
    universe = _rows(people, unique, rng)
    # Each process posts its own share plus 20% rows of the others' shares (duplicates).
    share = unique // PROCESSES
    plans = []
    for p in range(PROCESSES):
        own = universe[p * share:(p + 1) * share]
        others = universe[:p * share] + universe[(p + 1) * share:]
        rows = own + rng.sample(others, len(own) // 4)
        rng.shuffle(rows)
        plans.append([rows[i:i + BATCH] for i in range(0, len(rows), BATCH)])
    env = {**os.environ, "DATABASE_URL": _url(), "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    procs = []
    for p, batches in enumerate(plans):
        (tmp_path / f"b{p}.json").write_text(json.dumps(batches))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.usage.ingest_worker", str(tmp_path / f"b{p}.json"),
             str(tmp_path / f"r{p}.json"), token],
            cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE))
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-3000:]
    results = [json.loads((tmp_path / f"r{p}.json").read_text()) for p in range(PROCESSES)]
    bodies = [r["body"] for rs in results for r in rs]
    assert all(r["status"] == 200 for rs in results for r in rs)
    posted = sum(len(b) for plan in plans for b in plan)
    assert sum(b["accepted"] for b in bodies) == unique
    assert sum(b["duplicates"] for b in bodies) == posted - unique
    assert not any(b["rejected"] for b in bodies)

    calls = CallRecord.objects.filter(organization=org)
    assert calls.count() == unique
    assert not [k for k, n in Counter(calls.values_list("graph_id", flat=True)).items() if n > 1]
    usage = LedgerEntry.objects.filter(organization=org, kind="usage")
    charged = calls.filter(charge__gt=0)
    assert usage.count() == charged.count()
    assert set(usage.values_list("idempotency_key", flat=True)) == {
        f"call:{g}" for g in charged.values_list("graph_id", flat=True)}
    assert -usage.aggregate(s=Sum("amount"))["s"] == charged.aggregate(s=Sum("charge"))["s"]
    account = CreditAccount.objects.get(organization=org)
    assert account.balance == LedgerEntry.objects.filter(organization=org).aggregate(
        s=Sum("amount"))["s"]
    # Pools add up: what each pool says it gave is what the calls say they took.
    taken = defaultdict(int)
    for kind, country, minutes in calls.filter(pool_minutes__gt=0).values_list(
            "pool_kind", "pool_country", "pool_minutes"):
        taken[(kind, country)] += minutes
    pools = {(p.kind, p.country): p.used_minutes
             for p in MinutePool.objects.filter(organization=org) if p.used_minutes}
    assert pools == dict(taken)
    assert sum(taken.values()) > 0
    for pool in MinutePool.objects.filter(organization=org):
        assert pool.used_minutes <= pool.total_minutes


def _url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"

