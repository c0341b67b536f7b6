"""`recharge_latency_p95_ms`: from the usage charge that takes the balance below the
auto-recharge trigger to the credited recharge, with a real Celery worker on Redis
(PostgreSQL). Measured on the database's own clock: the usage entry's created_at (set
inside the charging transaction, just before commit) to the recharge entry's created_at."""

import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal

SAMPLES = 50


def run() -> dict[str, float]:
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings
    from django.utils.text import slugify

    from config.celery import app
    from credits.models import LedgerEntry
    from credits.platform.services import organization_create
    from credits.services.ledger import UsageCharge, credits_charge_usage_batch
    from credits.services.recharges import auto_recharge_configure
    from tests.factories import funded_account, saved_card

    if not settings.REDIS_URL or not settings.USING_POSTGRES:
        raise RuntimeError("needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    app.conf.task_always_eager = False
    app.control.purge()

    def new_org():
        org = organization_create(name="Bench Recharge", country="US", currency="USD",
                                  slug=slugify(f"bench-{time.time_ns()}"))
        funded_account(org, "100.00")
        card = saved_card(org)
        auto_recharge_configure(organization=org, enabled=True, amount=Decimal(50),
                                trigger=Decimal(50), payment_method=card,
                                actor="bench")
        return org

    latencies = []
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=10):
        for i in range(SAMPLES):
            if i % 10 == 0:  # the per-day cap allows 10 recharges of 50 a day per account
                org = new_org()
            balance = org.credit_account.__class__.objects.get(organization=org).balance
            # Exactly enough to land 1.00 below the trigger: one crossing, one recharge.
            amount = balance - Decimal(49)
            before = LedgerEntry.objects.filter(organization=org, kind="auto_recharge").count()
            credits_charge_usage_batch(organization=org, charges=[UsageCharge(
                key=f"bench:{i}", amount=amount, description="bench",
                occurred_at=datetime.now(UTC))])
            deadline = time.monotonic() + 30
            while LedgerEntry.objects.filter(organization=org,
                                             kind="auto_recharge").count() == before:
                if time.monotonic() > deadline:
                    raise RuntimeError("no recharge within 30 s")
                time.sleep(0.002)
            usage = LedgerEntry.objects.get(organization=org, idempotency_key=f"bench:{i}")
            recharge = (LedgerEntry.objects.filter(organization=org, kind="auto_recharge")
                        .order_by("-id").first())
            latencies.append((recharge.created_at - usage.created_at).total_seconds() * 1000)
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    return {"recharge_latency_p95_ms": round(p95, 3),
            "recharge_latency_median_ms": round(statistics.median(latencies), 3)}
