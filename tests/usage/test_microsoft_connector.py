"""The Microsoft Graph connector against a local HTTPS copy of Microsoft's documented
contract (tests/usage/fake_graph.py): sign-in, paging, throttling, resume, overlap, the
one-pull-at-a-time rule, notifications, the page and the commands."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import connection as db_connection
from django.utils import timezone

from credits.models import DomainEvent, LedgerEntry
from credits.platform.events import event_dispatch
from credits.platform.services import Actor, ServiceError
from tests.conftest import requires_postgres
from usage.microsoft import connection_test, pull
from usage.microsoft.client import retry_after_seconds
from usage.models import CallRecord, DirectRoutingCall, MicrosoftConnection, MicrosoftPullRun

from .conftest import fund, run_command
from .fake_graph import CLIENT_ID, SECRET, TENANT, FakeGraph, dr_row, pstn_row

ACTOR = Actor.system("test")


@pytest.fixture
def fake(settings, monkeypatch, tmp_path):
    graph = FakeGraph(page_size=2).start()
    settings.MS_LOGIN_BASE_URL = graph.base
    settings.MS_GRAPH_BASE_URL = graph.base
    settings.MS_PULL_MAX_RETRIES = 3
    settings.MS_PULL_MAX_BACKOFF_SECONDS = 60
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", graph.write_ca(tmp_path / "ca.pem"))
    yield graph
    graph.stop()


@pytest.fixture
def waits(monkeypatch):
    """The sleeper of every Graph client: records the waits instead of sleeping."""
    recorded = []
    monkeypatch.setattr(pull, "CLIENT_FACTORY",
                        lambda conn, **kw: pull.client_for(conn, **{**kw,
                                                                  "sleep": recorded.append}))
    return recorded


@pytest.fixture
def connected(org, fake, waits):
    pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                   client_secret=SECRET, actor=ACTOR)
    return org


def _ago(**kw) -> datetime:
    return timezone.now() - timedelta(**kw)


def test_a_full_pull_follows_every_next_link_and_stores_both_kinds(connected, fake):
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, minutes=i)) for i in range(5)]
    fake.dr_rows = [dr_row(i, _ago(hours=4, minutes=i)) for i in range(3)]
    outcome = pull.microsoft_pull(organization=connected)
    assert outcome.ok, outcome.message
    assert (outcome.totals["pstn"].pulled, outcome.totals["direct_routing"].pulled) == (5, 3)
    assert CallRecord.objects.filter(organization=connected, source="graph").count() == 5
    assert DirectRoutingCall.objects.filter(organization=connected).count() == 3
    run = MicrosoftPullRun.objects.get()
    assert run.status == "succeeded" and run.pages == 3 + 2
    assert (run.pstn_imported, run.dr_imported) == (5, 3)
    # The documented paths: the function call, then each nextLink as Graph gave it.
    pstn = fake.graph_requests("getPstnCalls")
    assert pstn[0].startswith("/v1.0/communications/callRecords/getPstnCalls(fromDateTime=")
    assert [p.rsplit("$skip=", 1)[-1] for p in pstn[1:]] == ["2", "4"]
    conn = MicrosoftConnection.objects.get()
    assert conn.last_success_at is not None and conn.pstn_through is not None
    assert conn.resume == {}


def test_windows_are_at_most_90_days_and_overlap_by_the_margin():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cut = pull.windows(start, start + timedelta(days=200), overlap=timedelta(hours=1))
    assert all(hi - lo <= timedelta(days=90) for lo, hi in cut)
    assert cut[0][0] == start and cut[-1][1] == start + timedelta(days=200)
    for (_lo1, hi1), (lo2, _hi2) in zip(cut, cut[1:], strict=False):
        assert hi1 - lo2 == timedelta(hours=1)


def test_a_backfill_longer_than_90_days_asks_graph_in_windows_graph_accepts(connected, fake):
    fake.pstn_rows = [pstn_row(0, _ago(days=150))]
    outcome = pull.microsoft_pull(organization=connected, kind="backfill", days=200)
    assert outcome.ok, outcome.message  # the fake refuses a range over 90 days with a 400
    assert outcome.totals["pstn"].pulled == 1
    run = MicrosoftPullRun.objects.get()
    assert run.windows_total == 6 and run.windows_done == 6 and run.progress_percent == 100


def test_a_failure_mid_pages_resumes_from_the_failed_page(connected, fake, settings):
    fake.pstn_rows = [pstn_row(i, _ago(hours=5, minutes=i)) for i in range(5)]
    fake.fail(status=503, function="getPstnCalls", skip=2, times=settings.MS_PULL_MAX_RETRIES + 1)
    first = pull.microsoft_pull(organization=connected)
    assert not first.ok and first.error_code == "unavailable"
    assert first.totals["pstn"].pulled == 2
    assert "next pull starts again from the same page" in first.message
    conn = MicrosoftConnection.objects.get()
    assert conn.resume["pstn"]["next"].endswith("$skip=2")
    assert conn.consecutive_failures == 1
    seen = len(fake.graph_requests("getPstnCalls"))
    second = pull.microsoft_pull(organization=connected)
    assert second.ok, second.message
    again = fake.graph_requests("getPstnCalls")[seen:]
    assert again[0].endswith("$skip=2")  # not the first page again
    assert second.totals["pstn"].pulled == 3 and second.totals["pstn"].duplicates == 0
    assert CallRecord.objects.filter(organization=connected).count() == 5
    assert MicrosoftConnection.objects.get().consecutive_failures == 0


def test_the_overlap_rereads_late_rows_and_charges_each_call_once(connected, fake, deck,
                                                                   us_user):
    fund(connected, 100)
    # International calls on a Domestic Calling Plan: credits pay (charging-rules.md).
    paid = dict(callType="user_out", calleeNumber="+33123456789", duration=120,
                userPrincipalName=us_user.upn, userId=None, destinationContext="International")
    fake.pstn_rows = [pstn_row(i, _ago(minutes=20 + i), **paid) for i in range(3)]
    assert pull.microsoft_pull(organization=connected).ok
    usage = LedgerEntry.objects.filter(kind="usage")
    assert usage.count() == 3
    # A row Microsoft adds late, with a start already read; the margin reads it again.
    fake.pstn_rows.append(pstn_row(9, _ago(minutes=25), **paid))
    second = pull.microsoft_pull(organization=connected)
    assert second.ok
    assert (second.totals["pstn"].pulled, second.totals["pstn"].duplicates) == (1, 3)
    assert usage.count() == 4
    assert CallRecord.objects.filter(organization=connected).count() == 4


def test_throttling_waits_retry_after_capped_without_sleeping(connected, fake, waits):
    fake.pstn_rows = [pstn_row(i, _ago(hours=3, minutes=i)) for i in range(3)]
    fake.fail(status=429, function="getPstnCalls", skip=0, times=2, retry_after="7")
    fake.fail(status=503, function="getPstnCalls", skip=2, retry_after="3")
    fake.fail(status=429, function="getDirectRoutingCalls", retry_after="9000")
    fake.fail(status=503, function="getDirectRoutingCalls")  # no Retry-After: back-off
    started = timezone.now()
    outcome = pull.microsoft_pull(organization=connected)
    assert outcome.ok, outcome.message
    assert waits == [7, 7, 3, 60, 4]  # 9000 s capped at 60; then 2 ** 2 (second retry)
    assert (timezone.now() - started).total_seconds() < 30
    run = MicrosoftPullRun.objects.get()
    assert run.retries == 5 and run.waited_seconds == 81
    assert outcome.totals["pstn"].pulled == 3


def test_retry_after_takes_seconds_or_an_http_date():
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("Mon, 30 Nov 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("soon") is None


def test_an_expired_token_is_replaced_once(connected, fake):
    fake.pstn_rows = [pstn_row(0, _ago(hours=2))]
    client = pull.client_for(MicrosoftConnection.objects.get())
    client.token()
    fake.expire_tokens()  # Graph now answers 401 InvalidAuthenticationToken to it
    rows = list(client.pages("pstn", _ago(days=1), timezone.now()))
    assert len(rows[0].rows) == 1
    assert fake.tokens_issued() == 2


def test_missing_permission_or_consent_is_said_in_words(connected, fake):
    fake.consent = False
    outcome = pull.microsoft_pull(organization=connected)
    assert not outcome.ok and outcome.error_code == "permission"
    assert "CallRecords.Read.All" in outcome.message and "admin consent" in outcome.message
    result = connection_test.microsoft_connection_test(organization=connected, actor=ACTOR)
    assert not result.ok and "CallRecords.Read.All" in result.message


@pytest.mark.parametrize(("field", "value", "words"), [
    ("client_secret", "wrong-secret-value", "refused the client secret"),
    ("tenant_id", "fabrikam.onmicrosoft.com", "does not know this tenant"),
    ("client_id", "11111111-2222-3333-4444-555555555555", "client) ID was not found"),
])
def test_a_bad_secret_tenant_or_client_id_is_said_in_words(org, fake, waits, field, value,
                                                            words):
    values = {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET,
              field: value}
    pull.microsoft_connection_save(organization=org, actor=ACTOR, **values)
    result = connection_test.microsoft_connection_test(organization=org, actor=ACTOR)
    assert not result.ok
    assert words in result.message
    assert MicrosoftConnection.objects.get().last_test_message == result.message


def test_test_connection_succeeds_with_the_right_app(connected, fake):
    result = connection_test.microsoft_connection_test(organization=connected, actor=ACTOR)
    assert result.ok, result.message
    assert fake.graph_requests("getPstnCalls")  # one small call after the token


# --- secrets ------------------------------------------------------------------------------


def test_the_secret_is_encrypted_at_rest_and_never_read_back(org, settings):
    pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                   client_secret=SECRET, actor=ACTOR)
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT secret_encrypted FROM usage_microsoftconnection")
        stored = cursor.fetchone()[0]
    assert SECRET not in stored and stored.startswith("gAAAAA")
    conn = MicrosoftConnection.objects.get()
    assert pull.client_for(conn).credential.client_secret == SECRET
    # An empty secret keeps the stored one; a new one replaces it.
    pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                   actor=ACTOR)
    assert MicrosoftConnection.objects.get().secret_encrypted == stored
    pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                   client_secret="another~secret~value", actor=ACTOR)
    conn = MicrosoftConnection.objects.get()
    assert pull.client_for(conn).credential.client_secret == "another~secret~value"
    # A key that changed cannot read it: said in words.
    settings.FIELD_ENCRYPTION_KEY = "bm90LXRoZS1zYW1lLWtleS1hdC1hbGwtMDEyMzQ1Njc="
    with pytest.raises(pull.ConnectorError) as caught:
        pull.client_for(conn)
    assert caught.value.code == "bad_key" and "Enter the client secret again" in str(caught.value)


def test_without_an_encryption_key_no_connection_is_stored(org, settings):
    settings.FIELD_ENCRYPTION_KEY = ""
    with pytest.raises(ServiceError) as caught:
        pull.microsoft_connection_save(organization=org, tenant_id=TENANT,
                                       client_id=CLIENT_ID, client_secret=SECRET, actor=ACTOR)
    assert "FIELD_ENCRYPTION_KEY is not set" in caught.value.message
    assert not MicrosoftConnection.objects.exists()


def test_bad_ids_are_refused_naming_the_field(org):
    with pytest.raises(ServiceError) as caught:
        pull.microsoft_connection_save(organization=org, tenant_id="not a tenant!",
                                       client_id=CLIENT_ID, client_secret=SECRET, actor=ACTOR)
    assert caught.value.field == "tenant_id"
    with pytest.raises(ServiceError) as caught:
        pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id="abc",
                                       client_secret=SECRET, actor=ACTOR)
    assert caught.value.field == "client_id"
    with pytest.raises(ServiceError) as caught:
        pull.microsoft_connection_save(organization=org, tenant_id=TENANT,
                                       client_id=CLIENT_ID, actor=ACTOR)
    assert caught.value.field == "client_secret"


def test_a_certificate_signs_in_instead_of_a_secret(org, fake, waits, tmp_path):
    import trustme

    issued = trustme.CA().issue_cert("app.contoso.example", key_type=trustme.KeyType.RSA)
    pem = issued.private_key_pem.bytes().decode() + issued.cert_chain_pems[0].bytes().decode()
    conn = pull.microsoft_connection_save(organization=org, tenant_id=TENANT,
                                          client_id=CLIENT_ID, certificate_pem=pem, actor=ACTOR)
    assert conn.uses_certificate and not conn.secret_encrypted
    assert "PRIVATE KEY" not in conn.certificate_encrypted
    fake.thumbprint = conn.certificate_thumbprint
    result = connection_test.microsoft_connection_test(organization=org, actor=ACTOR)
    assert result.ok, result.message


# --- one pull at a time --------------------------------------------------------------------


def test_a_second_pull_while_one_runs_is_not_started(connected, fake):
    MicrosoftPullRun.objects.create(organization=connected, kind="scheduled")
    outcome = pull.microsoft_pull(organization=connected)
    assert outcome.skipped and outcome.error_code == "already_running"
    assert MicrosoftPullRun.objects.count() == 1
    assert fake.graph_requests() == []


def test_a_pull_whose_worker_vanished_is_closed_as_interrupted(connected, fake):
    MicrosoftPullRun.objects.create(organization=connected, kind="scheduled",
                                    heartbeat_at=_ago(hours=2))
    assert pull.microsoft_pull(organization=connected).ok
    stale = MicrosoftPullRun.objects.order_by("pk").first()
    assert stale.status == "failed" and stale.error_code == "interrupted"


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_two_beats_racing_run_one_pull_and_store_each_call_once(org, fake, waits):
    pull.microsoft_connection_save(organization=org, tenant_id=TENANT, client_id=CLIENT_ID,
                                   client_secret=SECRET, actor=ACTOR)
    fake.pstn_rows = [pstn_row(i, _ago(hours=3, minutes=i)) for i in range(4)]
    fake.delay = 0.5  # each page takes a while: the second beat arrives during the first
    barrier = threading.Barrier(2)
    outcomes = []

    def beat():
        from django.db import connection

        try:
            barrier.wait()
            outcomes.append(pull.microsoft_pull(organization=org))
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(o.skipped for o in outcomes) == [False, True]
    assert [o.ok for o in outcomes if not o.skipped] == [True]
    assert MicrosoftPullRun.objects.count() == 1
    assert CallRecord.objects.filter(organization=org).count() == 4


# --- failing and recovered ------------------------------------------------------------------


def test_three_failures_tell_the_credit_and_teams_roles_once_then_recovery(
        connected, fake, make_person, django_capture_on_commit_callbacks):
    make_person("teams_communications_administrator", display_name="Tina Teams",
                preferred_language="fr")
    make_person("billing_administrator", display_name="Bill Billing")
    make_person("global_reader", display_name="Gail Reader")
    fake.consent = False
    for _ in range(4):
        assert not pull.microsoft_pull(organization=connected).ok
    failing = DomainEvent.objects.filter(name="connector_failing")
    assert failing.count() == 1  # once per incident, not at the 4th failure
    assert failing.get().payload["failures"] == 3
    with django_capture_on_commit_callbacks(execute=True):
        event_dispatch(event_id=failing.get().pk)
    to = {m.to[0]: m for m in mail.outbox}
    assert len(to) == 2  # not the Global Reader
    french = next(m for m in mail.outbox if "n'arrivent plus" in m.subject)
    assert "CallRecords.Read.All" in french.body and "consentement" in french.body
    fake.consent = True
    mail.outbox.clear()
    assert pull.microsoft_pull(organization=connected).ok
    recovered = DomainEvent.objects.get(name="connector_recovered")
    with django_capture_on_commit_callbacks(execute=True):
        event_dispatch(event_id=recovered.pk)
    assert any("arrive from Microsoft again" in m.subject for m in mail.outbox)
    conn = MicrosoftConnection.objects.get()
    assert conn.consecutive_failures == 0 and not conn.failure_notified


def test_the_home_page_shows_a_banner_while_the_connector_fails(connected, fake,
                                                                admin_client):
    fake.consent = False
    for _ in range(2):
        pull.microsoft_pull(organization=connected)
    assert b"connector-failing" not in admin_client.get("/").content
    pull.microsoft_pull(organization=connected)
    page = admin_client.get("/").content.decode()
    assert "Call records no longer arrive from Microsoft." in page
    assert "CallRecords.Read.All" in page


# --- the page -------------------------------------------------------------------------------


def test_the_page_saves_masks_the_secret_and_tests_in_words(org, fake, waits, admin_client):
    page = admin_client.get("/settings/microsoft/")
    assert page.status_code == 200 and b"Connect to Microsoft" in page.content
    response = admin_client.post("/settings/microsoft/", {
        "tenant_id": TENANT, "client_id": CLIENT_ID, "cloud": "global",
        "client_secret": "wrong-secret-value", "enabled": "on"})
    assert response.status_code == 302
    page = admin_client.post("/settings/microsoft/test/", follow=True).content.decode()
    assert "Microsoft refused the client secret" in page
    assert "wrong-secret-value" not in page and "wro…" in page


def test_the_page_in_french_shows_the_run_history(connected, fake, admin_client):
    fake.pstn_rows = [pstn_row(0, _ago(hours=2))]
    pull.microsoft_pull(organization=connected)
    fake.consent = False
    pull.microsoft_pull(organization=connected)
    page = admin_client.get("/settings/microsoft/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Connexion Microsoft" in page
    assert "Dernière récupération réussie" in page
    assert "consentement administrateur" in page
    assert SECRET not in page


def test_a_backfill_asked_on_the_page_runs_in_the_background(connected, fake, admin_client,
                                                             django_capture_on_commit_callbacks):
    fake.pstn_rows = [pstn_row(0, _ago(days=40))]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/settings/microsoft/backfill/", {"days": "60"})
    assert response.status_code == 302
    run = MicrosoftPullRun.objects.get()
    assert run.kind == "backfill" and run.status == "succeeded" and run.progress_percent == 100
    assert CallRecord.objects.filter(organization=connected).count() == 1
    page = admin_client.get("/settings/microsoft/").content.decode()
    assert "Backfill" in page


def test_a_reader_sees_the_page_without_the_form(connected, make_person, client_for):
    reader = client_for(make_person("global_reader"))
    page = reader.get("/settings/microsoft/")
    assert page.status_code == 200 and b"Test connection" not in page.content
    assert reader.post("/settings/microsoft/test/").status_code == 403


# --- commands and the schedule --------------------------------------------------------------


def test_the_commands_connect_and_pull_printing_per_kind(org, fake, waits):
    fake.pstn_rows = [pstn_row(i, _ago(hours=2, minutes=i)) for i in range(3)]
    fake.dr_rows = [dr_row(0, _ago(hours=2))]
    code, out, err = run_command("connect_microsoft", "--org", org.slug, "--tenant-id", TENANT,
                                 "--client-id", CLIENT_ID, "--client-secret", SECRET)
    assert code == 0, err
    assert SECRET not in out
    code, out, err = run_command("pull_microsoft", "--org", org.slug)
    assert code == 0, err
    assert "PSTN: pulled 3, duplicates 0, rejected 0" in out
    assert "Direct Routing: pulled 1, duplicates 0, rejected 0" in out
    code, out, _err = run_command("pull_microsoft", "--org", org.slug, "--days", "2")
    assert code == 0
    assert "PSTN: pulled 0, duplicates 3, rejected 0" in out


def test_pull_microsoft_exits_1_with_the_reason_when_sign_in_fails(org, fake, waits):
    run_command("connect_microsoft", "--org", org.slug, "--tenant-id", TENANT,
                "--client-id", CLIENT_ID, "--client-secret", "not-the-secret")
    code, out, err = run_command("pull_microsoft", "--org", org.slug)
    assert code == 1
    assert "Microsoft refused the client secret" in err
    assert "PSTN: pulled 0, duplicates 0, rejected 0" in out


def test_the_beat_pulls_every_connected_organization_every_15_minutes(connected, fake,
                                                                      settings):
    from usage.tasks import pull_microsoft_all

    entry = settings.CELERY_BEAT_SCHEDULE["usage-pull-microsoft"]
    assert entry["task"] == "usage.tasks.pull_microsoft_all" and entry["schedule"] == 900
    fake.pstn_rows = [pstn_row(0, _ago(hours=1))]
    assert pull_microsoft_all() == 1  # eager in tests: the pull ran
    assert CallRecord.objects.filter(organization=connected, source="graph").count() == 1


def test_rejected_rows_are_counted_and_shown(connected, fake):
    fake.pstn_rows = [pstn_row(0, _ago(hours=1)), pstn_row(1, _ago(hours=1), duration=-5)]
    outcome = pull.microsoft_pull(organization=connected)
    assert outcome.ok
    assert (outcome.totals["pstn"].pulled, outcome.totals["pstn"].rejected) == (1, 1)
    sample = MicrosoftPullRun.objects.get().rejected_sample
    assert sample[0]["errors"]["duration"]


def test_the_demo_connection_is_labelled_and_never_pulled(org, admin_client):
    import io

    from usage import demo_microsoft

    demo_microsoft.seed(org, io.StringIO())
    demo_microsoft.seed(org, io.StringIO())  # idempotent
    assert MicrosoftPullRun.objects.filter(organization=org, is_demo=True).count() == 97
    assert pull.connections_to_pull() == []
    page = admin_client.get("/settings/microsoft/").content.decode()
    assert "Demo data." in page and "contoso.onmicrosoft.com" in page
    assert "Microsoft Graph was unavailable after several tries" in page
    assert demo_microsoft.DEMO_SECRET not in page


def test_the_run_history_shows_20_runs_a_page_with_a_pager(org, admin_client):
    """97 demo runs: 20 a page, newest first, a next link, the backfill on the last page
    with its window as dates; the failed runs' errors in words on the first page."""
    import io
    import re

    from credits.templatetags.dates import format_day, format_when
    from usage import demo_microsoft

    demo_microsoft.seed(org, io.StringIO())
    runs = re.compile(r'<tr class="run[ "]')
    first = admin_client.get("/settings/microsoft/").content.decode()
    assert len(runs.findall(first)) == 20
    assert "97 runs" in first and "Page 1 of 5" in first
    assert 'href="?page=2">Next</a>' in first
    assert "Microsoft Graph was unavailable after several tries" in first
    newest = MicrosoftPullRun.objects.filter(organization=org).order_by("-started_at").first()
    newest_cell = f'<td class="run__started">{format_when(newest.started_at)}</td>'
    assert newest_cell in first
    second = admin_client.get("/settings/microsoft/?page=2").content.decode()
    assert len(runs.findall(second)) == 20 and newest_cell not in second
    last = admin_client.get("/settings/microsoft/?page=5").content.decode()
    assert len(runs.findall(last)) == 17 and "Next</a>" not in last
    backfill = MicrosoftPullRun.objects.get(organization=org, kind="backfill")
    assert f"{format_day(backfill.window_start)} – {format_day(backfill.window_end)}</span>" \
        in last
    assert admin_client.get("/settings/microsoft/?page=x").status_code == 200


def test_a_runs_window_is_short_and_whole_in_its_title():
    from django.utils import translation

    from usage.views.microsoft import window_label

    day = datetime(2026, 3, 2, 9, 24, tzinfo=UTC)
    run = MicrosoftPullRun(started_at=day, window_start=day - timedelta(minutes=75),
                           window_end=day)
    with translation.override("en"):
        assert window_label(run) == ("8:09\u202fAM – 9:24\u202fAM",
                                     "Mar 2, 2026, 8:09\u202fAM – Mar 2, 2026, 9:24\u202fAM UTC")
        run.window_start = day - timedelta(hours=10)
        assert window_label(run)[0] == "Mar 1, 2026, 11:24\u202fPM – 9:24\u202fAM"
        run.window_start = day - timedelta(days=90)
        assert window_label(run)[0] == "Dec 2, 2025 – Mar 2, 2026"
        assert window_label(MicrosoftPullRun(started_at=day)) == ("-", "")
    with translation.override("fr"):
        run.window_start = day - timedelta(minutes=75)
        assert window_label(run)[0] == "08:09 – 09:24"
