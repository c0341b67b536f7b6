"""The demo's Microsoft connection (a step of `seed_demo`): a connection of Contoso's
made-up tenant and a day of pull history, every run marked as demo data, which the page says
in a banner. The beat never pulls a demo connection (usage.microsoft.pull.connections_to_pull).
Idempotent: a second run leaves an existing connection alone."""

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .microsoft import secrets
from .microsoft.errors import ConnectorError
from .models import MicrosoftConnection, MicrosoftPullRun

TENANT = "contoso.onmicrosoft.com"
CLIENT_ID = "3f1c9a52-7b4e-4d2a-9e61-0c8b5d7a2f10"
DEMO_SECRET = "demo~not-a-real-secret~0000000000000000"
INTERVAL = timedelta(minutes=15)
RUNS = 96  # a day


@transaction.atomic
def seed(org, stdout) -> None:
    if MicrosoftConnection.objects.filter(organization=org).exists():
        return
    now = timezone.now().replace(second=0, microsecond=0)
    rng = random.Random(18)
    connection = MicrosoftConnection(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                     enabled=False, is_demo=True, credential_set_at=now
                                     - timedelta(days=91), last_test_at=now - timedelta(days=91),
                                     last_test_ok=True,
                                     last_test_message="Signed in to Microsoft and read the "
                                                       "call records (demo data).")
    try:
        connection.secret_encrypted = secrets.encrypt(DEMO_SECRET)
        connection.secret_hint = secrets.secret_hint(DEMO_SECRET)
    except ConnectorError:
        pass  # no FIELD_ENCRYPTION_KEY outside DEBUG: the page says so
    runs = []
    # The first day: a backfill of the 90 days of history, in one-day windows' pages.
    start = now - timedelta(days=91)
    runs.append(MicrosoftPullRun(
        organization=org, kind="backfill", status="succeeded", started_at=start,
        heartbeat_at=start + timedelta(minutes=6), finished_at=start + timedelta(minutes=6),
        window_start=start - timedelta(days=90), window_end=start, windows_total=4,
        windows_done=4, pages=41, pstn_imported=38210, pstn_duplicates=0, pstn_rejected=3,
        dr_imported=2140, dr_duplicates=0, dr_rejected=0, is_demo=True,
        rejected_sample=[{"kind": "pstn", "id": "7d1e0a33-demo", "errors": {
            "startDateTime": "expected an ISO 8601 date and time"}}]))
    for i in range(RUNS, 0, -1):
        begun = now - INTERVAL * i
        failed = i in (8, 7)  # an outage of Graph, ridden out on the next pull
        throttled = i == 15
        pstn = 0 if failed else rng.randint(0, 25)
        dr = 0 if failed else rng.randint(0, 4)
        seconds = rng.uniform(1.5, 4.0) + (12 if throttled else 0)
        runs.append(MicrosoftPullRun(
            organization=org, kind="scheduled", status="failed" if failed else "succeeded",
            started_at=begun, heartbeat_at=begun + timedelta(seconds=seconds),
            finished_at=begun + timedelta(seconds=seconds + (300 if failed else 0)),
            window_start=begun - INTERVAL - timedelta(hours=1), window_end=begun,
            windows_total=2, windows_done=0 if failed else 2,
            pages=0 if failed else 2, pstn_imported=pstn,
            pstn_duplicates=0 if failed else rng.randint(20, 60), dr_imported=dr,
            dr_duplicates=0 if failed else rng.randint(0, 8),
            retries=6 if failed else (2 if throttled else 0),
            waited_seconds=126 if failed else (12 if throttled else 0),
            error_code="unavailable" if failed else "",
            error="HTTP 503 serviceNotAvailable: The service is temporarily unavailable."
            if failed else "", is_demo=True))
    MicrosoftPullRun.objects.bulk_create(runs)
    connection.pstn_through = connection.direct_routing_through = now - INTERVAL
    connection.last_success_at = now - INTERVAL
    connection.save()
    stdout.write(f"Microsoft connection (demo data): {len(runs)} runs")
