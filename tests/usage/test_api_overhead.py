"""What an API request costs besides its own work (issue 20): the browser's middleware is
skipped (no session, no user, no person, no CSRF, no messages) without weakening the pages;
the rate limit counts in the process and adds to Redis at most once per flush interval,
exact within one; /healthz keeps its Redis connection; the per-request database check is
skipped only for a connection used a moment ago."""

import time

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone as django_timezone

from tests.conftest import requires_postgres, requires_redis
from tests.factories import PersonFactory
from usage import api_auth

from .conftest import licensed

pytestmark = pytest.mark.django_db

AUTHORIZE = "/api/v1/calls/authorize"


@pytest.fixture
def caller(org, deck):
    return licensed(PersonFactory(organization=org, upn="ana@contoso.com",
                                  usage_location="US"), "MCOEV", "MCOPSTN1")


def _authorize(client, token, **extra):
    return client.post(AUTHORIZE, {"userPrincipalName": "ana@contoso.com",
                                   "calleeNumber": "+12125550123", "callType": "user_out"},
                       content_type="application/json", **extra,
                       **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}))


# --- the browser's middleware ----------------------------------------------------------------


def test_an_api_request_reads_no_session_user_or_person_and_needs_no_csrf_token(
        caller, token, client_for, make_person):
    # A browser signed in as a person with a French page language, CSRF checks on.
    browser = client_for(make_person("billing_administrator", preferred_language="fr"))
    browser.handler.enforce_csrf_checks = True
    assert browser.cookies.get(django_settings.SESSION_COOKIE_NAME)

    with CaptureQueriesContext(connection) as queries:
        answer = _authorize(browser, token)

    assert answer.status_code == 200 and answer.json()["allowed"] is True, answer.content
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "django_session" not in sql and "credits_user" not in sql, sql
    assert "credits_personrole" not in sql, sql
    assert not answer.cookies  # no session, no CSRF cookie set on an API answer
    # What the API does need still runs: security headers.
    assert answer["Content-Security-Policy"] and answer["X-Frame-Options"] == "DENY"
    assert answer["Content-Language"] == "en"  # Accept-Language, not the person's language


def test_a_session_cookie_alone_does_not_authenticate_an_api_request(caller, client_for,
                                                                     make_person):
    browser = client_for(make_person("billing_administrator"))
    assert _authorize(browser, None).status_code == 401


def test_pages_keep_csrf_sessions_and_the_person(client_for, make_person):
    browser = client_for(make_person("billing_administrator", preferred_language="fr"))
    browser.handler.enforce_csrf_checks = True
    # A page in the person's language, signed in through the session.
    home = browser.get("/")
    assert home.status_code == 200 and home["Content-Language"] == "fr"
    # A form posted without its CSRF token is refused.
    refused = browser.post("/account/language/", {"language": "en", "next": "/"})
    assert refused.status_code == 403


# --- the rate limit --------------------------------------------------------------------------


def test_the_rate_limit_adds_to_the_shared_count_once_per_interval(caller, token,
                                                                   monkeypatch, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 1000
    calls = []
    real = api_auth._add_to_shared

    def spy(key, n):
        calls.append(n)
        return real(key, n)

    monkeypatch.setattr(api_auth, "_add_to_shared", spy)
    monkeypatch.setattr(api_auth, "_counter", api_auth.WindowCounter(flush_interval=3600))
    client = Client()
    codes = {_authorize(client, token).status_code for _ in range(20)}
    assert codes == {200}
    assert calls == [1]  # the first request flushed; the next 19 cost no round trip


def test_the_limit_is_exact_in_one_process_and_within_one_interval_across_processes(
        settings):
    from django.core.cache import cache

    cache.clear()
    window = int(time.time() // 60)
    key = f"api-rate:1:test:{window}"
    now = window * 60 + 1.0
    one, two = api_auth.WindowCounter(10.0), api_auth.WindowCounter(10.0)
    # One process: every request counts at once.
    assert [one.count(key, now + i / 100) for i in range(5)] == [1, 2, 3, 4, 5]
    # Another process sees the first one's requests as of its last flush (the first),
    # then all of them once both have flushed again: at most one interval behind.
    assert two.count(key, now) == 2  # the shared 1 from `one`'s first flush, plus its own
    assert one.count(key, now + 10.5) == 7  # flushes its 5 more: shared 1 + 1 + 5
    assert two.count(key, now + 10.5) == 8  # flushes: the shared count is exact again
    assert cache.get(key) == 8


def test_with_the_cache_down_the_limit_still_holds_in_the_process(caller, token,
                                                                  monkeypatch, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3

    def down(key, n):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(api_auth, "_add_to_shared", down)
    monkeypatch.setattr(api_auth, "_counter", api_auth.WindowCounter(flush_interval=0))
    client = Client()
    codes = [_authorize(client, token).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


# --- /healthz and the database check ---------------------------------------------------------


@requires_redis
def test_healthz_keeps_one_redis_connection(client, settings):
    from credits.platform import views

    settings.CELERY_BROKER_URL = settings.REDIS_URL
    views._redis_clients.clear()
    for _ in range(5):
        answer = client.get("/healthz")
        assert answer.status_code == 200 and answer.json()["broker"]["ok"] is True
    pool = views._redis_clients[settings.REDIS_URL].connection_pool
    assert pool._created_connections == 1


def test_the_database_check_is_skipped_only_for_a_connection_used_a_moment_ago():
    from credits.platform import dbhealth

    connection.ensure_connection()
    saved = connection.health_check_enabled, connection.health_check_done
    try:
        connection.health_check_enabled = True
        for used, errors, skipped in ((0.1, False, True), (dbhealth.RECHECK_AFTER_IDLE_S + 1,
                                                           False, False),
                                      (0.1, True, False), (None, False, False)):
            connection.health_check_done = False
            connection.errors_occurred = errors
            connection._cc_last_ok = None if used is None else time.monotonic() - used
            dbhealth._skip_check_if_recently_used()
            assert connection.health_check_done is skipped, (used, errors)
    finally:
        connection.errors_occurred = False
        connection.health_check_enabled, connection.health_check_done = saved


# --- authorize in one round trip -------------------------------------------------------------


@pytest.mark.parametrize("callee, paid_by", [("+12125550123", "plan_pool"),
                                             ("+33123456789", "credits")])
def test_authorize_reads_the_token_and_every_fact_in_one_query(caller, token, client, org,
                                                               callee, paid_by):
    """The pool path (a domestic call under a calling plan) costs what the credits path
    costs: one statement, also once PostgreSQL has prepared it (its 5th run)."""
    from credits.selectors.licenses import pool_facts

    from .conftest import fund

    licensed(caller, "MCOPSTNC")
    fund(org, "50")
    body = {"userPrincipalName": "ana@contoso.com", "calleeNumber": callee,
            "callType": "user_out"}
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client.post(AUTHORIZE, body, content_type="application/json", **auth)  # records the use
    for _ in range(7):
        with CaptureQueriesContext(connection) as queries:
            answer = client.post(AUTHORIZE, body, content_type="application/json", **auth)
        assert answer.status_code == 200, answer.content
        assert answer.json()["allowed"] is True and answer.json()["chargedTo"] == paid_by
        if connection.vendor == "postgresql":
            assert len(queries.captured_queries) == 1
    if paid_by == "plan_pool":
        # What the pool gives is what the pool's own selectors say is left.
        used, seats = pool_facts(organization=org, kinds=("domestic",), country="US",
                                 at=django_timezone.now())
        assert seats == {"MCOPSTN1": 1} and used == {}
        assert answer.json()["maxDurationSeconds"] >= 3000 * 60


def test_a_bad_token_gets_401_before_its_input_is_judged(client, token, deck, settings):
    """authorize checks its token in its own read (usage.api_auth.ReadWithFactsToken); a
    request refused for its input first still gets 401 when its token is bad, as on every
    other operation, and the input's own error when it is good."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5000
    inputs = [(b"{not json", 400), (b'{"userPrincipalName": "x"}', 422),
              (b'{"userPrincipalName": "' + b"x" * 6000 + b'"}', 413)]
    for raw_body, own_status in inputs:
        for bearer, status in (("nope", 401), ("", 401), (token, own_status)):
            extra = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
            answer = client.post(AUTHORIZE, raw_body, content_type="application/json",
                                 **extra)
            assert answer.status_code == status, (raw_body[:30], bearer, answer.content)
            if status == 401:
                assert answer["WWW-Authenticate"] == "Bearer"
                assert answer.json()["code"] == "unauthorized"


def test_authorize_answers_in_the_schemas_shape(caller, token, client, org):
    """authorize returns its answer without a second validation: the answers are held to
    AuthorizeOut here, allowed and refused alike."""
    from usage.api import AuthorizeOut

    cases = [("ana@contoso.com", "+12125550123", "user_out"),   # the plan's pool
             ("ana@contoso.com", "+33123456789", "user_out"),   # no credits license
             ("nobody@contoso.com", "+12125550123", "user_out"),
             ("ana@contoso.com", "+12125550123", "user_in"),    # free
             ("ana@contoso.com", "12", "user_out"),
             ("ana@contoso.com", "+12125550123", "nonsense")]
    reasons = set()
    for upn, callee, call_type in cases:
        answer = client.post(AUTHORIZE, {"userPrincipalName": upn, "calleeNumber": callee,
                                         "callType": call_type},
                             content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {token}")
        assert answer.status_code == 200
        assert answer["Content-Type"] == "application/json; charset=utf-8"
        data = answer.json()
        assert set(data) == set(AuthorizeOut.model_fields)
        assert AuthorizeOut.model_validate(data).model_dump() == data
        reasons.add(data["reason"])
    assert reasons == {None, "no_credits_license", "unknown_user", "invalid_number",
                       "unknown_call_type"}


def test_authorize_past_the_rate_limit_says_when_to_retry(client, token, deck, settings):
    from django.core.cache import cache

    cache.clear()
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    answers = [_authorize(client, token) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert answers[2].json()["code"] == "rate_limited"


def test_the_bearer_header_reads_as_ninjas_http_bearer(caller, token, client):
    """OrganizationToken reads Authorization from META (not request.headers, which builds
    every header first) and takes what ninja's HttpBearer takes: the scheme in any case,
    the token after the first space."""
    forms = [(f"Bearer {token}", 200), (f"bearer {token}", 200), (f"BEARER {token}", 200),
             (f"Token {token}", 401), (f"Basic {token}", 401), (token, 401), ("Bearer", 401),
             ("Bearer ", 401), (f"Bearer  {token}", 401), (f"Bearer {token} ", 401), ("", 401),
             ("Bearer " + "x" * 5000, 401), (f"Bearer {token}\x00", 401),
             (f"Bearer {token[:-1]}\udcff", 401)]
    for value, status in forms:
        for method, path, body in (
                ("get", "/api/v1/credits/balance", None),
                ("post", AUTHORIZE, {"userPrincipalName": "ana@contoso.com",
                                     "calleeNumber": "+12125550123", "callType": "user_out"})):
            extra = {"HTTP_AUTHORIZATION": value} if value else {}
            if method == "get":
                answer = client.get(path, **extra)
            else:
                answer = client.post(path, body, content_type="application/json", **extra)
            assert answer.status_code == status, (value, path, answer.content)
            if status == 401:
                assert answer["WWW-Authenticate"] == "Bearer"


def _prepared_statements() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        return cursor.fetchone()[0]


@requires_postgres
@pytest.mark.django_db(transaction=True)  # the test reconnects: no wrapping transaction
def test_authorize_is_prepared_by_the_server_unless_turned_off(caller, token, client):
    """The authorize statement is prepared on its 5th run on a connection; with
    DATABASE_PREPARED_STATEMENTS=false (prepare_threshold None: behind a transaction-mode
    pooler) it never is, and answers the same."""
    import os
    import subprocess
    import sys

    body = {"userPrincipalName": "ana@contoso.com", "calleeNumber": "+12125550123",
            "callType": "user_out"}
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    connection.ensure_connection()
    assert connection.connection.prepare_threshold == 5
    answers = set()
    for threshold, prepared in ((None, 0), (5, 1)):
        connection.close()
        connection.ensure_connection()
        connection.connection.prepare_threshold = threshold
        for _ in range(7):
            answer = client.post(AUTHORIZE, body, content_type="application/json", **auth)
            assert answer.status_code == 200
            answers.add(answer.content)
        assert _prepared_statements() == prepared, threshold
    assert len(answers) == 1
    # The setting: what a process started with the variable gets.
    for value, threshold in (("false", "None"), ("true", "5"), (None, "5")):
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_PREPARED_STATEMENTS"}
        if value is not None:
            env["DATABASE_PREPARED_STATEMENTS"] = value
        out = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from django.conf import "
             "settings; print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])"],
            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"}, capture_output=True,
            text=True, check=True)
        assert out.stdout.strip() == threshold, (value, out.stderr)


def test_the_api_is_told_from_pages_under_a_script_prefix(caller, token, client):
    """Served under a prefix (SCRIPT_NAME), /prefix/api/... is still the API: JSON errors,
    no session, the bearer token."""
    answer = client.get("/api/v1/credits/balance", SCRIPT_NAME="/credits-center")
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert "sessionid" not in answer.cookies and "csrftoken" not in answer.cookies
    answer = client.get("/api/v1/credits/balance", SCRIPT_NAME="/credits-center",
                        HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200 and "balance" in answer.json()
    missing = client.get("/api/v1/nothing-here", SCRIPT_NAME="/credits-center")
    assert missing.status_code == 404 and missing["Content-Type"].startswith(
        "application/json")


def test_authorize_prices_with_the_deck_loaded_last_at_once(caller, token, client, org):
    """The rate comes from the deck parsed once per process: the round trip reads only the
    deck's stamp, so a deck loaded since (here, or by another process) is parsed and used
    by the very next request; no stale rate survives it."""
    from tests.factories import TEST_DECK_CSV, load_test_deck

    from .conftest import fund

    licensed(caller, "MCOPSTNC")
    fund(org, "50")
    body = {"userPrincipalName": "ana@contoso.com", "calleeNumber": "+33123456789",
            "callType": "user_out"}
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def seconds():
        answer = client.post(AUTHORIZE, body, content_type="application/json", **auth)
        assert answer.status_code == 200 and answer.json()["chargedTo"] == "credits"
        return answer.json()["maxDurationSeconds"]

    before = seconds()
    for price in ("0.04800", "0.02400"):
        load_test_deck(org, TEST_DECK_CSV.replace("France,FR,landline,0.02400",
                                                  f"France,FR,landline,{price}"))
        with CaptureQueriesContext(connection) as queries:
            after = seconds()
        # Twice the price, half the time (to the minute block); then back.
        if price == "0.04800":
            assert abs(after - before / 2) <= 60, (before, after)
        else:
            assert after == before
        if connection.vendor == "postgresql":
            assert len(queries.captured_queries) == 2  # the facts, then the new deck's rows
            with CaptureQueriesContext(connection) as queries:
                assert seconds() == after
            assert len(queries.captured_queries) == 1


def test_organizations_authorizing_in_turn_keep_their_parsed_decks(client, monkeypatch):
    """Each organization's deck stays parsed (RATE_DECK_CACHE_SIZE of them per process):
    organizations placing calls in turn cost one query each once warm, and a cache smaller
    than them reads the decks again, one more query each, with the same answers."""
    from credits.platform.services import Actor
    from tests.factories import OrganizationFactory, load_test_deck
    from usage import selectors
    from usage.services import api_token_create

    from .conftest import fund

    callers = []
    for i in range(3):
        org = OrganizationFactory(name=f"Org {i}", slug=f"org-{i}")
        load_test_deck(org)
        fund(org, str(20 + 10 * i))  # a different answer per organization
        licensed(PersonFactory(organization=org, upn=f"ana@org{i}.example",
                               usage_location="US"), "MCOEV", "MCOPSTNC")
        token = api_token_create(organization=org, name="switch", actor=Actor.system("t"))[1]
        callers.append((f"ana@org{i}.example", {"HTTP_AUTHORIZATION": f"Bearer {token}"}))

    def round_of_calls() -> list[tuple[int, int]]:
        """(queries, maxDurationSeconds) of each organization's call, in turn."""
        seen = []
        for upn, auth in callers:
            with CaptureQueriesContext(connection) as queries:
                answer = client.post(AUTHORIZE, {"userPrincipalName": upn,
                                                 "calleeNumber": "+33123456789",
                                                 "callType": "user_out"},
                                     content_type="application/json", **auth)
            assert answer.status_code == 200 and answer.json()["chargedTo"] == "credits"
            seen.append((len(queries.captured_queries), answer.json()["maxDurationSeconds"]))
        return seen

    round_of_calls()  # records each token's use and parses each deck
    warm = round_of_calls()
    durations = [d for _n, d in warm]
    assert len(set(durations)) == 3
    monkeypatch.setattr(selectors, "_decks", selectors._DeckCache(size=2))
    round_of_calls()
    small = round_of_calls()
    assert [d for _n, d in small] == durations
    if connection.vendor == "postgresql":
        assert [n for n, _d in warm] == [1, 1, 1]
        assert [n for n, _d in small] == [2, 2, 2]  # each deck read again in its turn
