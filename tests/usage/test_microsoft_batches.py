"""The Graph connector commits what it reads in batches of FILE_ROWS_PER_BATCH rows, as file
imports do (issue 20), against the local HTTPS copy of Graph (tests/usage/fake_graph.py)
with Graph's own page size: a batch is whole pages, the resume link and the run's counters
move when a batch commits, and a pull that stops before a batch commits reads its pages
again without storing or charging a call twice."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from credits.models import AuditEntry, LedgerEntry
from credits.platform.services import Actor
from credits.selectors.billing import credit_balance
from usage import ingest
from usage.microsoft import client as graph_client
from usage.microsoft import pull
from usage.models import CallRecord, DirectRoutingCall, MicrosoftConnection, MicrosoftPullRun

from .conftest import fund
from .fake_graph import CLIENT_ID, SECRET, TENANT, FakeGraph, dr_row, pstn_row

ACTOR = Actor.system("test")
BATCH = 2000


@pytest.fixture
def fake(settings, monkeypatch, tmp_path):
    graph = FakeGraph(page_size=1000).start()  # Graph's page size
    settings.MS_LOGIN_BASE_URL = graph.base
    settings.MS_GRAPH_BASE_URL = graph.base
    settings.MS_PULL_MAX_RETRIES = 2
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graph.write_ca(tmp_path / "ca.pem"))
    monkeypatch.setattr(pull, "CLIENT_FACTORY",
                        lambda conn, **kw: pull.client_for(conn, **{**kw,
                                                                  "sleep": lambda s: None}))
    monkeypatch.setattr(ingest, "FILE_ROWS_PER_BATCH", BATCH)
    yield graph
    graph.stop()


@pytest.fixture
def connected(org, fake):
    pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                   client_secret=SECRET, actor=ACTOR)
    return org


@pytest.fixture
def calls(monkeypatch):
    """The ingester calls per kind: (rows in the call, the run and the resume link as a
    page showed them when the call began)."""
    seen = {kind: [] for kind in pull.KINDS}
    for kind in pull.KINDS:
        real = pull.INGESTERS[kind]

        def spy(organization, rows, now, real=real, kind=kind):
            run = MicrosoftPullRun.objects.order_by("-pk").first()
            resume = (MicrosoftConnection.objects.get().resume or {}).get(kind) or {}
            seen[kind].append((len(rows), run, resume.get("next", "")))
            return real(organization, rows, now)

        monkeypatch.setitem(pull.INGESTERS, kind, spy)
    return seen


def _ago(**kw):
    return timezone.now() - timedelta(**kw)


def _skip(url: str) -> str:
    return url.rsplit("$skip=", 1)[-1] if "$skip=" in url else "first page"


def _paid(person):
    # International calls on a Domestic Calling Plan: credits pay (charging-rules.md).
    return dict(callType="user_out", calleeNumber="+33123456789", duration=120,
                userPrincipalName=person.upn, userId=None, destinationContext="International")


def test_pages_are_committed_in_batches_of_file_rows_per_kind(connected, fake, calls):
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, seconds=i)) for i in range(2500)]
    fake.dr_rows = [dr_row(i, _ago(hours=4, seconds=i)) for i in range(2500)]
    outcome = pull.microsoft_pull(organization=connected)
    assert outcome.ok, outcome.message
    # 3 pages of each kind (1,000 + 1,000 + 500 rows): two batches, not one per page.
    assert [n for n, _run, _next in calls["pstn"]] == [2000, 500]
    assert [n for n, _run, _next in calls["direct_routing"]] == [2000, 500]
    # One transaction per batch: calls_ingest audits each of its transactions once.
    assert AuditEntry.objects.filter(action="calls.ingest").count() == 2
    # Every row once.
    assert CallRecord.objects.filter(organization=connected, source="graph").count() == 2500
    assert DirectRoutingCall.objects.filter(organization=connected).count() == 2500
    assert (outcome.totals["pstn"].pulled, outcome.totals["pstn"].duplicates) == (2500, 0)
    assert outcome.totals["direct_routing"].pulled == 2500
    run = MicrosoftPullRun.objects.get()
    assert (run.status, run.pages, run.pstn_imported, run.dr_imported) == (
        "succeeded", 6, 2500, 2500)
    # While the pull ran, a page saw the first batch counted and the pages read, and the
    # next pull would have started after it (the third page), not before.
    _n, during, resume = calls["pstn"][1]
    assert (during.pstn_imported, during.pages, during.status) == (2000, 3, "running")
    assert _skip(resume) == "2000"
    conn = MicrosoftConnection.objects.get()
    assert conn.resume == {} and conn.pstn_through is not None


class WorkerKilled(BaseException):
    """What a killed worker looks like from the database: nothing after it runs."""


def test_a_worker_killed_before_its_batch_commits_reads_those_pages_again(
        connected, fake, calls, deck, us_user, monkeypatch):
    fund(connected, 100_000)
    funded = credit_balance(organization=connected)
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, seconds=i), **_paid(us_user))
                      for i in range(3500)]
    real_page = graph_client.GraphClient.page
    killed = []

    def page(self, url):
        if url.endswith("$skip=3000") and not killed:
            killed.append(url)
            raise WorkerKilled  # the fourth page: the third is read, not committed
        return real_page(self, url)

    monkeypatch.setattr(graph_client.GraphClient, "page", page)
    with pytest.raises(WorkerKilled):
        pull.microsoft_pull(organization=connected)
    assert [n for n, _run, _next in calls["pstn"]] == [2000]
    assert CallRecord.objects.filter(organization=connected).count() == 2000
    conn = MicrosoftConnection.objects.get()
    # The next pull starts after the committed batch, at the page read but not committed;
    # the window is not read to its end: the watermark stays.
    assert _skip(conn.resume["pstn"]["next"]) == "2000"
    assert conn.pstn_through is None
    run = MicrosoftPullRun.objects.get()
    assert (run.status, run.pages, run.pstn_imported) == ("running", 3, 2000)

    MicrosoftPullRun.objects.update(heartbeat_at=_ago(hours=1))  # the worker is gone
    seen = len(fake.graph_requests("getPstnCalls"))
    second = pull.microsoft_pull(organization=connected)
    assert second.ok, second.message
    again = fake.graph_requests("getPstnCalls")[seen:]
    # The uncommitted page again, then on; then the window from the first pull's end.
    assert [_skip(url) for url in again] == ["2000", "3000", "first page"]
    assert (second.totals["pstn"].pulled, second.totals["pstn"].duplicates) == (1500, 0)
    # Every call stored once and charged once.
    stored = CallRecord.objects.filter(organization=connected)
    assert stored.count() == 3500
    assert stored.values("graph_id").distinct().count() == 3500
    usage = LedgerEntry.objects.filter(organization=connected, kind="usage")
    assert usage.count() == 3500
    charged = round(stored.aggregate(total=Sum("charge"))["total"], 2)  # SQLite sums floats
    assert charged > 0
    assert credit_balance(organization=connected) == funded - charged
    assert -round(usage.aggregate(total=Sum("amount"))["total"], 2) == charged
    conn = MicrosoftConnection.objects.get()
    assert conn.resume == {} and conn.pstn_through is not None
    runs = MicrosoftPullRun.objects.order_by("pk")
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert runs[0].error_code == "interrupted"


def test_when_graph_fails_the_pages_read_are_committed_and_the_next_pull_starts_after(
        connected, fake, calls, settings):
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, seconds=i)) for i in range(3500)]
    fake.fail(status=503, function="getPstnCalls", skip=3000,
              times=settings.MS_PULL_MAX_RETRIES + 1)
    first = pull.microsoft_pull(organization=connected)
    assert not first.ok and first.error_code == "unavailable"
    # A full batch, then on the failure the page read since.
    assert [n for n, _run, _next in calls["pstn"]] == [2000, 1000]
    assert first.totals["pstn"].pulled == 3000
    run = MicrosoftPullRun.objects.get()
    assert (run.status, run.pages, run.pstn_imported) == ("failed", 3, 3000)
    conn = MicrosoftConnection.objects.get()
    assert _skip(conn.resume["pstn"]["next"]) == "3000" and conn.pstn_through is None
    seen = len(fake.graph_requests("getPstnCalls"))
    second = pull.microsoft_pull(organization=connected)
    assert second.ok, second.message
    assert [_skip(url) for url in fake.graph_requests("getPstnCalls")[seen:]] == [
        "3000", "first page"]
    assert (second.totals["pstn"].pulled, second.totals["pstn"].duplicates) == (500, 0)
    assert CallRecord.objects.filter(organization=connected).count() == 3500


def test_a_page_bigger_than_a_batch_is_ingested_in_batches(connected, fake, calls,
                                                           monkeypatch):
    monkeypatch.setattr(ingest, "FILE_ROWS_PER_BATCH", 400)
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, seconds=i)) for i in range(1200)]
    outcome = pull.microsoft_pull(organization=connected)
    assert outcome.ok, outcome.message
    assert [n for n, _run, _next in calls["pstn"]] == [400, 400, 200, 200]
    assert CallRecord.objects.filter(organization=connected).count() == 1200


def test_a_saved_link_leading_elsewhere_gets_no_token(connected, fake, monkeypatch):
    """A resumed pull checks its saved link as Graph's own links are checked: the bearer
    token goes to Graph only."""
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, seconds=i)) for i in range(10)]
    MicrosoftConnection.objects.update(resume={"pstn": {
        "start": _ago(days=1).isoformat(), "end": timezone.now().isoformat(),
        "next": "https://graph.attacker.example/v1.0/steal?$skip=2"}})
    outcome = pull.microsoft_pull(organization=connected)
    assert not outcome.ok
    assert outcome.error_code == "bad_response"  # not "unreachable": nothing was sent there
    assert "leads elsewhere" in outcome.error
