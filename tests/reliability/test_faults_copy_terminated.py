"""Fault: PostgreSQL terminates the ingesting connection in the middle of its COPY.

`pg_terminate_backend` ends the very backend that is streaming a batch of 1000 calls. The
error comes out of psycopg's COPY, not through Django's cursor wrapper, and must still
answer the API's 503 with Retry-After: a client that retries on 503 then sends the batch
again, and every call is stored exactly once."""

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from credits.platform.services import Actor
from tests.conftest import requires_postgres
from tests.factories import graph_row, load_test_deck
from usage.models import CallRecord
from usage.services import api_token_create

from .faults_support import database_url

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

ROWS = 1000


def _terminate(pid: int) -> None:
    """Ends backend `pid` from another connection and waits until it is gone."""
    with psycopg.connect(database_url(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            [pid]).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend outlived pg_terminate_backend"
            time.sleep(0.02)


def test_a_backend_terminated_mid_copy_answers_503_and_the_retry_stores_each_call_once(
        client, org, monkeypatch, reliability):
    survived = False
    try:
        load_test_deck(org)
        token = api_token_create(organization=org, name="switch",
                                 actor=Actor.system("tests"))[1]
        start = datetime(2026, 11, 2, 8, tzinfo=UTC)
        rows = [graph_row(f"cut-{i}", startDateTime=(start + timedelta(seconds=i)).isoformat())
                for i in range(ROWS)]
        written, killed = [0], []
        write_row = psycopg.Copy.write_row

        def write_row_then_cut(copy, row):
            # Half way through the batch, end this COPY's own backend; later rows keep
            # flowing into a connection that is gone.
            if written[0] == ROWS // 2 and not killed:
                killed.append(copy.connection.info.backend_pid)
                _terminate(killed[0])
            written[0] += 1
            return write_row(copy, row)

        def post():
            return client.post("/api/v1/pstn-calls", {"value": rows},
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {token}")

        with monkeypatch.context() as patch:
            patch.setattr(psycopg.Copy, "write_row", write_row_then_cut)
            cut = post()
        assert killed, "the COPY never ran"
        assert cut.status_code == 503, cut.content[:1000]
        assert cut["Content-Type"].startswith("application/json")
        body = cut.json()
        assert body["code"] == "unavailable" and set(body) == {"detail", "code", "errors"}
        assert int(cut["Retry-After"]) > 0
        # Nothing of the cut batch was kept: the transaction died with its backend.
        assert connection.connection is None or connection.connection.info.backend_pid \
            != killed[0]
        assert CallRecord.objects.count() == 0

        retry = post()
        assert retry.status_code == 200, retry.content[:1000]
        assert retry.json() == {"accepted": ROWS, "duplicates": 0, "rejected": []}
        again = post()
        assert again.json() == {"accepted": 0, "duplicates": ROWS, "rejected": []}
        ids = list(CallRecord.objects.filter(organization=org).values_list("graph_id",
                                                                          flat=True))
        assert len(ids) == len(set(ids)) == ROWS
        assert set(ids) == {r["id"] for r in rows}
        survived = True
    finally:
        reliability.fault(survived=survived)
