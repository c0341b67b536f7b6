"""A separate process posting batches of call rows to the API (the reliability test).

Usage: python -m tests.usage.ingest_worker BATCHES.json RESULTS.json TOKEN
Reads the database from DATABASE_URL (the test database), like a second web process.
"""

import json
import os
import sys


def main() -> None:
    batches_path, results_path, token = sys.argv[1:4]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    import django

    django.setup()
    from django.test import Client

    client = Client()
    results = []
    with open(batches_path) as f:
        batches = json.load(f)
    for batch in batches:
        response = client.post("/api/v1/pstn-calls", {"value": batch},
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")
        results.append({"status": response.status_code, "body": response.json()})
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
