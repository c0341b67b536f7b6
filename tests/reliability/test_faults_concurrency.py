"""Fault: 8 processes ingest 20,000 calls each (batches of 1000 through the API's view and
service), a quarter of them ids that other processes post too, against a small balance
with auto-recharge on (the recharge runs in the ingesting processes after each commit, as
eager Celery tasks, so recharges race with ingestion).

Invariants afterwards:
- every process finished within the bound (no deadlock) and every answer was 200;
- every id is stored once and charged once (usage ledger keys == the charged calls);
- the balance equals the ledger sum, and every entry's balance_after follows from the one
  before it (the writes were serialized);
- one recharge per crossing. With T the trigger, a *crossing* is a ledger entry that takes
  the balance from >= T to < T. A recharge never starts at or above T (its entry's balance
  before the credit is < T); a recharge that leaves the balance >= T closes the crossing;
  one that leaves it < T (more usage landed while the card was charged) is followed by
  another for the same crossing. So: recharges == crossings + recharges leaving it < T,
  and at the end (after the beat sweep) the balance is >= T. Each recharge is the
  smallest multiple of the amount that covered the gap when it started;
- pool totals add up: each pool's used minutes == the minutes its calls took, <= its size.
"""

import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.db.models import Count, Sum

from credits.models import (
    CreditAccount,
    LedgerEntry,
    LicenseAssignment,
    MinutePool,
    RechargeAttempt,
)
from credits.platform.services import Actor
from credits.services.recharges import auto_recharge_configure, recharge_amount_for_gap
from credits.tasks import auto_recharge_sweep
from tests.conftest import requires_postgres
from tests.factories import (
    OrganizationFactory,
    PersonFactory,
    funded_account,
    give_licenses,
    load_test_deck,
    saved_card,
)
from usage.models import CallRecord
from usage.services import api_token_create

from .faults_support import (
    database_url,
    eager_celery,  # noqa: F401 - a fixture, used by pytestmark
)

PROCESSES = 8
PER_PROCESS = 20_000
OVERLAP = 0.25  # of each process's rows are ids another process posts too
BATCH = 1000
TRIGGER = Decimal(50)
AMOUNT = Decimal(50)
BOUND_S = 300

pytestmark = pytest.mark.usefixtures("eager_celery")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_eight_processes_ingesting_overlapping_calls_charge_and_recharge_exactly(
        tmp_path, reliability):
    survived = False
    try:
        org = OrganizationFactory(country="US", currency="USD")
        load_test_deck(org)
        people = []
        for n in range(4):
            person = PersonFactory(organization=org, usage_location="US",
                                   upn=f"caller{n}@contoso.example")
            give_licenses(person, "MCOEV", "MCOPSTN1", "MCOPSTNC")
            people.append(person)
        LicenseAssignment.objects.filter(person__in=people).update(
            assigned_at=datetime(2026, 10, 1, tzinfo=UTC))
        funded_account(org, "60.00")
        auto_recharge_configure(organization=org, enabled=True, amount=AMOUNT,
                                trigger=TRIGGER, payment_method=saved_card(org),
                                actor="tests")
        _t, token = api_token_create(organization=org, name="switch",
                                     actor=Actor.system("tests"))

        own = int(PER_PROCESS * (1 - OVERLAP))
        unique = PROCESSES * own
        rng = random.Random(20)
        procs = []
        env = {**os.environ, "DATABASE_URL": database_url(),
               "DJANGO_SETTINGS_MODULE": "config.settings_test"}
        for p in range(PROCESSES):
            mine = list(range(p * own, (p + 1) * own))
            others = [k for k in rng.sample(range(unique), PER_PROCESS) if
                      not p * own <= k < (p + 1) * own][:PER_PROCESS - own]
            ids = mine + others
            rng.shuffle(ids)
            plan = {"token": token, "upns": [x.upn for x in people],
                    "batches": [ids[i:i + BATCH] for i in range(0, len(ids), BATCH)]}
            (tmp_path / f"plan{p}.json").write_text(json.dumps(plan))
        started = time.monotonic()
        for p in range(PROCESSES):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.faults_ingest_proc",
                 str(tmp_path / f"plan{p}.json"), str(tmp_path / f"result{p}.json")],
                cwd=settings.BASE_DIR, env=env, stderr=subprocess.PIPE))
        try:
            for proc in procs:
                _out, err = proc.communicate(timeout=max(1, BOUND_S - (time.monotonic()
                                                                        - started)))
                assert proc.returncode == 0, err.decode()[-3000:]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        elapsed = time.monotonic() - started
        results = [r for p in range(PROCESSES)
                   for r in json.loads((tmp_path / f"result{p}.json").read_text())]
        statuses = {r["status"] for r in results}
        assert statuses == {200}, [r for r in results if r["status"] != 200][:3]
        assert sum(r["body"]["accepted"] for r in results) == unique
        assert sum(r["body"]["duplicates"] for r in results) == PROCESSES * PER_PROCESS - unique
        assert not any(r["body"]["rejected"] for r in results)

        # Stored once, charged once.
        calls = CallRecord.objects.filter(organization=org)
        assert calls.count() == unique
        assert not calls.values("graph_id").annotate(n=Count("id")).filter(n__gt=1).exists()
        usage = LedgerEntry.objects.filter(organization=org, kind="usage")
        charged = calls.filter(charge__gt=0)
        assert usage.count() == charged.count() > 0
        assert set(usage.values_list("idempotency_key", flat=True)) == {
            f"call:{g}" for g in charged.values_list("graph_id", flat=True)}
        spent = -usage.aggregate(s=Sum("amount"))["s"]
        assert spent == charged.aggregate(s=Sum("charge"))["s"]

        # The beat sweep catches a recharge the last batch's check may have raced past.
        auto_recharge_sweep()

        # The ledger: a serialized chain, the balance its sum.
        entries = list(LedgerEntry.objects.filter(organization=org).order_by("id")
                       .values_list("kind", "amount", "balance_after", "recharge_attempt_id"))
        balance = Decimal(0)
        crossings = recharges = short = 0
        for kind, amount, after, attempt_id in entries:
            assert after == balance + amount
            if balance >= TRIGGER > after:
                crossings += 1
            if kind == "auto_recharge":
                recharges += 1
                assert balance < TRIGGER, "a recharge started at or above the trigger"
                attempt = RechargeAttempt.objects.get(pk=attempt_id)
                assert amount == recharge_amount_for_gap(
                    balance=attempt.balance_before, trigger=TRIGGER, amount=AMOUNT)
                short += after < TRIGGER
            balance = after
        account = CreditAccount.objects.get(organization=org)
        assert account.balance == balance == LedgerEntry.objects.filter(
            organization=org).aggregate(s=Sum("amount"))["s"]
        assert recharges == crossings + short
        assert account.balance >= TRIGGER
        assert crossings >= 3, "the test should cross the trigger several times"
        attempts = RechargeAttempt.objects.filter(organization=org)
        assert attempts.filter(status="succeeded").count() == recharges
        assert not attempts.exclude(status="succeeded").exists()

        # Pools add up.
        taken = defaultdict(int)
        for kind, country, minutes in calls.filter(pool_minutes__gt=0).values_list(
                "pool_kind", "pool_country", "pool_minutes"):
            taken[(kind, country)] += minutes
        pools = {(p.kind, p.country): p for p in MinutePool.objects.filter(organization=org)}
        assert {k: p.used_minutes for k, p in pools.items() if p.used_minutes} == dict(taken)
        assert all(p.used_minutes <= p.total_minutes for p in pools.values())
        assert sum(taken.values()) > 0

        slowest = max(r["seconds"] for r in results)
        print(f"\nconcurrency: {PROCESSES} processes x {PER_PROCESS:,} calls "
              f"({unique:,} distinct, {PROCESSES * PER_PROCESS - unique:,} duplicates) in "
              f"{elapsed:.1f} s ({PROCESSES * PER_PROCESS / elapsed:,.0f} rows/s), slowest "
              f"batch {slowest:.2f} s; {usage.count():,} charged calls, {spent} spent; "
              f"{crossings} crossings, {recharges} recharges ({short} short); pools "
              f"{dict(taken)}")
        survived = True
    finally:
        reliability.fault(survived=survived)
