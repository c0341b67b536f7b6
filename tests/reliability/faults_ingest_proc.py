"""One ingesting process of the concurrency fault test: posts its share of call ids, in
batches of 1000, to the API (the Django test client: the same view, authentication and
service as a web process, in this process), with auto-recharge running after each
commit as an eager Celery task would.

Usage: python -m tests.reliability.faults_ingest_proc PLAN.json RESULTS.json
Reads the database from DATABASE_URL (the test database).
"""

import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta

START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
EXTERNAL = ["+12125550100", "+13125550147", "+14155550199", "+17185550123"]


def call_row(k: int, upns: list[str]) -> dict:
    """Call number k, the same in every process: mostly free inbound calls, some domestic
    calls from the plan pool (credits once it is used up), some international ones."""
    rng = random.Random(k)
    upn = upns[k % len(upns)]
    duration = rng.randint(30, 600)
    start = (START + timedelta(seconds=7 * k)).isoformat()
    roll = rng.random()
    if roll < 0.02:
        kind, callee, caller = "user_out", rng.choice(EXTERNAL), "+14255550100"
    elif roll < 0.04:
        kind, callee, caller = "user_out", "+33123456789", "+14255550100"
    else:
        kind, callee, caller = "user_in", "+14255550100", rng.choice(EXTERNAL)
    return {
        "id": f"conc-{k}", "callId": f"call-conc-{k}", "userId": None,
        "userPrincipalName": upn, "userDisplayName": "", "startDateTime": start,
        "endDateTime": None, "duration": duration, "charge": 0.0, "callType": kind,
        "currency": "USD", "calleeNumber": callee, "callerNumber": caller,
        "usageCountryCode": "US", "tenantCountryCode": "US", "connectionCharge": 0.0,
        "destinationContext": None, "destinationName": "", "conferenceId": None,
        "licenseCapability": "MCOPSTNU", "inventoryType": "Subscriber",
        "operator": "Microsoft", "callDurationSource": "microsoft",
    }


def main() -> None:
    plan_path, results_path = sys.argv[1:3]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    from django.test import Client

    with open(plan_path) as f:
        plan = json.load(f)
    client = Client(raise_request_exception=False)  # a server error is a 500, recorded
    results = []
    for batch in plan["batches"]:
        rows = [call_row(k, plan["upns"]) for k in batch]
        started = time.monotonic()
        response = client.post("/api/v1/pstn-calls", {"value": rows},
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {plan['token']}")
        body = response.json() if response.headers.get("Content-Type", "").startswith(
            "application/json") else {"raw": response.content.decode()[:2000]}
        results.append({"status": response.status_code, "body": body,
                        "seconds": time.monotonic() - started})
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
