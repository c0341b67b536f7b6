"""The JSON API at its edges: text no database column can hold, forged page cursors, bodies
over the upload limit, unknown paths and methods, a database that went away, and ranges
whose bounds are equal. Every answer is in the API's error shape, never a 500."""

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from django.core import signing
from django.db import OperationalError
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credits.platform import errors
from tests.factories import graph_row
from usage import report
from usage.models import CallRecord
from usage.selectors import decode_cursor, encode_cursor

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
RANGE = {"fromDateTime": "2026-11-01T00:00:00Z", "toDateTime": "2026-11-30T00:00:00Z"}
AUTHORIZE = {"userPrincipalName": "dom.user@contoso.com", "calleeNumber": "+12125550100",
             "callType": "user_out"}


def assert_error(response, status, code):
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = json.loads(response.content)
    assert set(body) == {"detail", "code", "errors"} and body["code"] == code, body
    assert body["detail"]
    return body


# --- text no column can hold ------------------------------------------------------------


def _unstorable():
    """Text with a NUL character or a lone surrogate somewhere in it."""
    bad = st.sampled_from(["\x00", "\ud800", "\udfff", "\udc80"])
    return st.tuples(st.text(max_size=20), bad, st.text(max_size=20)).map("".join)


@FUZZ
@given(field=st.sampled_from(sorted(AUTHORIZE)), value=_unstorable())
def test_authorize_refuses_nul_and_lone_surrogates_naming_the_field(api, deck, field, value):
    response = api.post("/calls/authorize", {**AUTHORIZE, field: value[:32]})
    body = assert_error(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == [field] and field in body["detail"]


def test_authorize_still_takes_ordinary_unicode(api, deck):
    response = api.post("/calls/authorize", {**AUTHORIZE, "userPrincipalName": "zoë@例え.jp"})
    assert response.status_code == 200 and response.json()["reason"] == "unknown_user"


def test_skiptoken_with_a_nul_is_a_field_error(api):
    body = assert_error(api.get("/pstn-calls", {**RANGE, "$skiptoken": "a\x00b"}), 422,
                        "validation_error")
    assert "$skiptoken" in body["detail"]


# --- page cursors ---------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_times = st.one_of(
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                     "0001-01-01T00:00:00+22:48", "2026-11-02T09:00:00", "", "now"]),
)
_huge = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**200),
                  st.integers(max_value=0, min_value=-(2**200)))
_payloads = st.one_of(
    st.tuples(_times, _huge).map(list),
    st.recursive(st.none() | st.booleans() | st.floats() | _huge | st.text(),
                 lambda inner: st.lists(inner, max_size=4), max_leaves=8),
)
# Old-style cursors (plain base64 of JSON), signed-looking strings, and anything at all.
_tokens = st.one_of(
    st.text(max_size=200),
    _payloads.map(lambda p: _b64(json.dumps(p).encode())),
    st.binary(max_size=120).map(_b64),
    st.tuples(_payloads, st.text(alphabet="abcdefABCDEF0123456789-_", max_size=30)).map(
        lambda t: f"{_b64(json.dumps(t[0]).encode())}:{t[1]}"),
)


@FUZZ
@given(token=_tokens)
def test_a_forged_skiptoken_is_a_400_never_a_500(api, deck, token):
    response = api.get("/pstn-calls", {**RANGE, "$skiptoken": token})
    if token and "\x00" not in token:
        assert_error(response, 400, "bad_request")
    else:
        assert response.status_code in (200, 422), response.content[:300]


@FUZZ
@given(start=_times, pk=_huge)
def test_a_cursor_signed_here_with_out_of_range_values_is_refused_too(api, deck, start, pk):
    """The signature keeps forgeries out; the values are checked again all the same (a
    cursor of an older version, a key shared with another deployment)."""
    token = signing.dumps([["t", start], ["v", pk]], salt="usage.cursor:pstn-calls",
                          compress=False)
    response = api.get("/pstn-calls", {**RANGE, "$skiptoken": token})
    try:
        decode_cursor(token)
    except ValueError:
        assert_error(response, 400, "bad_request")
    else:
        assert response.status_code == 200, response.content[:300]


@settings(max_examples=200, deadline=None, database=None)
@given(start=st.datetimes(timezones=st.timezones(), min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
                          max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
       pk=st.integers(min_value=1, max_value=2**63 - 1))
def test_an_api_cursor_reads_back_what_it_was_made_of(start, pk):
    assert decode_cursor(encode_cursor(start, pk)) == (start.astimezone(UTC), pk)


def test_an_unsigned_cursor_of_the_old_form_is_refused():
    old = _b64(json.dumps(["2026-11-02T09:00:00+00:00", 5]).encode())
    with pytest.raises(ValueError):
        decode_cursor(old)
    assert report.decode_cursor(old, "-start") is None


def test_cursors_of_one_listing_do_not_open_another():
    token = encode_cursor(datetime(2026, 11, 2, tzinfo=UTC), 5)
    assert report.decode_cursor(token, "-start") is None
    report_token = report.encode_cursor("-start", datetime(2026, 11, 2, tzinfo=UTC), 5)
    with pytest.raises(ValueError):
        decode_cursor(report_token)
    assert report.decode_cursor(report_token, "start") is None


_values = st.one_of(
    st.datetimes(timezones=st.just(UTC), min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
                 max_value=datetime(9999, 12, 30)),  # noqa: DTZ001
    st.decimals(allow_nan=False, allow_infinity=False, places=2,
                min_value=Decimal("-1e15"), max_value=Decimal("1e15")),
    st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1),
    st.text(max_size=50).filter(lambda s: "\x00" not in s and s.isprintable()),
)


@settings(max_examples=200, deadline=None, database=None)
@given(sort=st.sampled_from(sorted(report.SORTS)), value=_values,
       pk=st.integers(min_value=1, max_value=2**63 - 1), token=_tokens)
def test_report_cursors_read_back_or_are_ignored(sort, value, pk, token):
    assert report.decode_cursor(report.encode_cursor(sort, value, pk), sort) == (value, pk)
    decoded = report.decode_cursor(token, sort)
    assert decoded is None
    forged = signing.dumps([["v", pk], ["v", 2**64]],
                           salt=f"usage.cursor:report:{sort}", compress=False)
    assert report.decode_cursor(forged, sort) is None


@FUZZ
@given(token=_tokens, key=st.sampled_from(["after", "before"]),
       sort=st.sampled_from(["-start", "charge", "-duration", "user"]))
def test_the_report_page_ignores_a_forged_cursor(admin_client, deck, token, key, sort):
    response = admin_client.get("/reports/pstn-usage/", {"sort": sort, key: token})
    assert response.status_code == 200


def test_paging_through_a_range_still_walks_every_call(api, deck):
    import usage.api

    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [graph_row(f"k{i}", startDateTime=(start + timedelta(seconds=i // 3)).isoformat())
            for i in range(23)]  # three calls share each start time: the id breaks the tie
    assert api.post("/pstn-calls", {"value": rows}).json()["accepted"] == 23
    original, usage.api.PAGE_SIZE = usage.api.PAGE_SIZE, 4
    try:
        seen, url = [], None
        while True:
            page = (api.get("/pstn-calls", RANGE) if url is None
                    else api.get(url.split("/api/v1")[1])).json()
            seen += [r["id"] for r in page["value"]]
            url = page.get("@odata.nextLink")
            if not url:
                break
    finally:
        usage.api.PAGE_SIZE = original
    assert sorted(seen) == sorted(r["id"] for r in rows) and len(seen) == 23


# --- both bounds inclusive ------------------------------------------------------------------


def test_equal_bounds_return_the_calls_that_started_at_that_instant(api, deck):
    at = "2026-11-02T09:00:00Z"
    api.post("/pstn-calls", {"value": [graph_row("at", startDateTime=at),
                                       graph_row("after", startDateTime="2026-11-02T09:00:01Z")]})
    response = api.get("/pstn-calls", {"fromDateTime": at, "toDateTime": at})
    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["value"]] == ["at"]
    # The end is inclusive at any width: a call starting exactly at toDateTime is in.
    wide = api.get("/pstn-calls", {"fromDateTime": "2026-11-01T00:00:00Z",
                                   "toDateTime": "2026-11-02T09:00:01Z"}).json()
    assert {r["id"] for r in wide["value"]} == {"at", "after"}


def test_a_range_ending_before_it_starts_or_over_90_days_is_refused(api):
    backwards = api.get("/pstn-calls", {"fromDateTime": "2026-11-02T00:00:01Z",
                                        "toDateTime": "2026-11-02T00:00:00Z"})
    assert_error(backwards, 400, "bad_request")
    exactly_90 = api.get("/pstn-calls", {"fromDateTime": "2026-01-01T00:00:00Z",
                                         "toDateTime": "2026-04-01T00:00:00Z"})
    assert exactly_90.status_code == 200
    over = api.get("/pstn-calls", {"fromDateTime": "2026-01-01T00:00:00Z",
                                   "toDateTime": "2026-04-01T00:00:01Z"})
    assert "90 days" in assert_error(over, 400, "bad_request")["detail"]


def test_the_schema_says_both_bounds_are_inclusive(client):
    op = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/pstn-calls"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    for name in ("fromDateTime", "toDateTime"):
        assert "inclusive" in params[name]["description"]
    assert "both included" in op["description"]
    assert {"413", "503"} <= set(client.get("/api/v1/openapi.json").json()["paths"][
        "/api/v1/pstn-calls"]["post"]["responses"])


# --- bodies over the upload limit ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/pstn-calls", "/calls/authorize"])
@pytest.mark.parametrize("debug", [False, True])
def test_a_body_over_the_upload_limit_is_a_413(api, deck, settings, path, debug):
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 5000
    big = {"value": [graph_row(f"big{i}") for i in range(50)]} if path == "/pstn-calls" \
        else {**AUTHORIZE, "padding": "x" * 6000}
    body = assert_error(api.post(path, big), 413, "too_large")
    assert "5000" in body["detail"]
    assert CallRecord.objects.count() == 0


def test_a_body_over_the_limit_read_outside_the_api_is_a_413_too(settings):
    from django.core.exceptions import RequestDataTooBig

    request = RequestFactory().post("/api/v1/pstn-calls", "{}",
                                    content_type="application/json")
    assert_error(errors.bad_request(request, RequestDataTooBig("big")), 413, "too_large")
    page = errors.bad_request(RequestFactory().post("/users/"), RequestDataTooBig("big"))
    assert page.status_code == 400 and b"<h1>" in page.content


# --- unknown paths and wrong methods ----------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1/nope"), ("post", "/api/v1/nope"), ("get", "/api/v2/pstn-calls"),
    ("get", "/api/"), ("delete", "/api/v1/pstn-calls/123"), ("get", "/api/v1/calls"),
])
def test_unknown_api_paths_are_a_json_404(settings, method, path, debug):
    settings.DEBUG = debug
    client = Client(enforce_csrf_checks=True)
    assert_error(getattr(client, method)(path), 404, "not_found")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("delete", "/api/v1/pstn-calls", {"GET", "POST"}),
    ("put", "/api/v1/pstn-calls", {"GET", "POST"}),
    ("get", "/api/v1/calls/authorize", {"POST"}),
    ("post", "/api/v1/credits/balance", {"GET"}),
])
def test_wrong_methods_are_a_json_405_with_allow(token, method, path, allowed):
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    body = assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response["Allow"].split(",")} == allowed
    assert method.upper() in body["detail"]


def test_pages_keep_their_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and b"<h1>" in response.content


# --- a database that went away ------------------------------------------------------------


@pytest.mark.parametrize("exc", [
    psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
    psycopg.OperationalError("consuming input failed: server closed the connection"),
    psycopg.InterfaceError("the connection is closed"),
    OperationalError("connection refused"),
])
def test_a_lost_database_during_ingest_is_a_503_with_retry_after(api, deck, monkeypatch, exc):
    import usage.api

    def lose(**_kwargs):
        raise exc

    monkeypatch.setattr(usage.api, "calls_ingest", lose)
    response = api.post("/pstn-calls", {"value": [graph_row("lost")]})
    assert_error(response, 503, "unavailable")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("exc", [psycopg.errors.AdminShutdown("gone"),
                                 psycopg.InterfaceError("closed"), OperationalError("down")])
def test_a_lost_database_outside_the_api_views_is_a_503_too(exc):
    """What handler500 answers when the database fails before a view (a middleware)."""
    for path, json_expected in (("/api/v1/pstn-calls", True), ("/users/", False)):
        try:
            raise exc
        except Exception:  # noqa: BLE001 - handler500 reads the exception being handled
            response = errors.server_error(RequestFactory().get(path))
        assert response.status_code == 503 and int(response["Retry-After"]) > 0
        if json_expected:
            assert_error(response, 503, "unavailable")
        else:
            assert b"<h1>" in response.content


def test_an_api_server_error_is_json():
    try:
        raise RuntimeError("bug")
    except RuntimeError:
        response = errors.server_error(RequestFactory().get("/api/v1/pstn-calls"))
    assert_error(response, 500, "server_error")
