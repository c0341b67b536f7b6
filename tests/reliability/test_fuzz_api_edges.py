"""The edges of the JSON API and of the report's paging, one hypothesis strategy per class
(tests/reliability/fuzz_classes.py):

- a forged `$skiptoken` on GET /api/v1/pstn-calls is a 400 in the API's error shape, and a
  forged `after` / `before` cursor of the PSTN usage report never a server error;
- a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 in the API's error shape, and stores
  nothing;
- a path under /api/ that no route serves is a JSON 404, a method an operation does not
  serve a JSON 405;
- ids that differ only in case or braces (`AB12...`, `ab12...`, `{ab12...}`) are one call,
  stored and charged once, whatever the path each spelling comes by.
"""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from config.api import api
from credits.platform.services import Actor
from credits.selectors.billing import credit_account_summary
from tests.factories import (
    PersonFactory,
    funded_account,
    give_licenses,
    graph_row,
    load_test_deck,
)
from usage import report
from usage.models import CallRecord
from usage.services import api_token_create, calls_ingest

from .fuzz_classes import (
    JSON_VALUES,
    Tally,
    assert_api_error,
    export_csv_text,
    forged_report_cursors,
    forged_skiptokens,
    fuzz_settings,
    guid_spellings,
    oversized_bodies,
    rolled_back,
    skiptoken_is_well_formed,
    unknown_api_paths,
)

pytestmark = pytest.mark.django_db

UPN = "dom.user@contoso-test.example"


@pytest.fixture
def tally(reliability):
    t = Tally(reliability)
    yield t
    t.close()


@pytest.fixture
def world(org):
    """A rated, funded organization with a person whose calls abroad credits pay, and a few
    calls in the report's default range."""
    load_test_deck(org)
    funded_account(org, "1000.00", auto_recharge_enabled=False)
    person = PersonFactory(organization=org, upn=UPN, display_name="Dom User",
                           usage_location="US")
    give_licenses(person, "MCOEV", "MCOPSTNC")
    result = calls_ingest(organization=org, source="api", rows=[
        _call(f"world-{i}", days_ago=2, hour=i) for i in range(3)])
    assert result.accepted == 3, result.rejected
    return org


@pytest.fixture
def api_client(world):
    raw = api_token_create(organization=world, name="fuzz", actor=Actor.system("t"))[1]
    cache.clear()  # the rate-limit windows of earlier tests
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def _call(graph_id: str, days_ago: int = 2, hour: int = 9) -> dict:
    day = (timezone.now() - timedelta(days=days_ago)).date().isoformat()
    return graph_row(graph_id, userPrincipalName=UPN, calleeNumber="+33123456789",
                     startDateTime=f"{day}T{hour:02d}:00:00Z", duration=60)


def _range() -> dict[str, str]:
    now = timezone.now()
    return {"fromDateTime": (now - timedelta(days=30)).isoformat(),
            "toDateTime": now.isoformat()}


# --- forged cursors -----------------------------------------------------------------------------


def test_a_forged_skiptoken_is_a_400_in_the_api_error_shape(api_client, tally):
    first = tally.run(api_client.get, "/api/v1/pstn-calls", _range())
    assert first.status_code == 200 and first.json()["@odata.count"] == 3, first.content

    @fuzz_settings(80)
    @given(token=forged_skiptokens())
    def probe(token):
        def get():
            response = tally.run(api_client.get, "/api/v1/pstn-calls",
                                 {**_range(), "$skiptoken": token})
            if skiptoken_is_well_formed(token) and response.status_code == 200:
                return  # names a place in the list, as a real cursor would
            if "\x00" in token and response.status_code == 422:
                # A NUL in any query parameter is refused by its validation, as such.
                assert_api_error(response, 422, "validation_error", ("$skiptoken", token))
                return
            assert_api_error(response, 400, "bad_request", ("$skiptoken", token))

        rolled_back(get)

    probe()


def test_a_forged_report_cursor_never_fails_the_report_page(admin_client, world, tally):
    first = tally.run(admin_client.get, "/reports/pstn-usage/")
    assert first.status_code == 200 and first.context["rows"], "the table has rows to page"

    @fuzz_settings(30)
    @given(pair=forged_report_cursors(sorted(report.SORTS)),
           direction=st.sampled_from(["after", "before"]))
    def probe(pair, direction):
        sort, cursor = pair

        def get():
            response = tally.run(admin_client.get, "/reports/pstn-usage/",
                                 {"sort": sort, direction: cursor})
            assert response.status_code in (200, 400), (sort, direction, cursor,
                                                        response.status_code)

        rolled_back(get)

    probe()


# --- bodies over DATA_UPLOAD_MAX_MEMORY_SIZE ----------------------------------------------------

POST_OPERATIONS = ["/api/v1/pstn-calls", "/api/v1/calls/authorize"]


def test_a_body_over_the_upload_limit_is_a_413_in_the_api_error_shape(api_client, world,
                                                                      tally):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    @fuzz_settings(8)
    @given(body=oversized_bodies(limit), path=st.sampled_from(POST_OPERATIONS))
    def probe(body, path):
        data, content_type = body

        def post():
            before = CallRecord.objects.count()
            response = tally.run(api_client.generic, "POST", path, data,
                                 content_type=content_type)
            assert_api_error(response, 413, "too_large", (path, len(data), content_type))
            assert CallRecord.objects.count() == before

        rolled_back(post)

    probe()


def test_a_body_under_the_upload_limit_is_read(api_client, world, tally):
    """The 413 above is the limit's, not a refusal of every large body."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    # Two rows; the second is rejected (its name is over 128 characters) and carries
    # blanks that bring the body to just under the limit.
    rows = [_call("small"), {**_call("under-limit"), "userDisplayName": "x" * 200, "pad": ""}]
    rows[1]["pad"] = " " * (limit - len(json.dumps({"value": rows})) - 16)
    body = json.dumps({"value": rows}).encode()
    assert limit - 64 < len(body) <= limit
    response = tally.run(api_client.post, "/api/v1/pstn-calls", body,
                         content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    answer = response.json()
    assert answer["accepted"] == 1 and [r["index"] for r in answer["rejected"]] == [1]


# --- paths and methods nobody serves -----------------------------------------------------------

SCHEMA_PATHS = api.get_openapi_schema()["paths"]
SERVED = {*SCHEMA_PATHS, "/api/v1/openapi.json", "/api/v1/docs"}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
WRONG_METHODS = [(method, path) for path, ops in SCHEMA_PATHS.items() for method in METHODS
                 if method.lower() not in ops]


def test_an_unknown_api_path_is_a_json_404(api_client, tally):
    @fuzz_settings(60)
    @given(path=unknown_api_paths(SERVED), method=st.sampled_from(METHODS),
           with_token=st.booleans())
    def probe(path, method, with_token):
        client = api_client if with_token else Client()

        def call():
            response = tally.run(client.generic, method, path, b"{}",
                                 content_type="application/json")
            assert_api_error(response, 404, "not_found", (method, path, with_token))

        rolled_back(call)

    probe()


def test_a_method_an_operation_does_not_serve_is_a_json_405(api_client, tally):
    assert len(WRONG_METHODS) >= 8, WRONG_METHODS

    @fuzz_settings(30)
    @given(pair=st.sampled_from(WRONG_METHODS), body=JSON_VALUES)
    def probe(pair, body):
        method, path = pair

        def call():
            response = tally.run(api_client.generic, method, path, json.dumps(body),
                                 content_type="application/json")
            assert_api_error(response, 405, "method_not_allowed", (method, path))
            allowed = {m.strip() for m in response.get("Allow", "").split(",")}
            assert allowed == {m.upper() for m in SCHEMA_PATHS[path]}, (method, path,
                                                                       response.get("Allow"))

        rolled_back(call)

    probe()


# --- one GUID, several spellings -----------------------------------------------------------------


def _balance(org) -> Decimal:
    return credit_account_summary(organization=org)["balance"]


def _send(route: str, rows: list[dict], org, api_client, tmp_path, capsys) -> tuple[int, int]:
    """Send rows by one route; (accepted, duplicates)."""
    if route == "api":
        response = api_client.post("/api/v1/pstn-calls", json.dumps({"value": rows}),
                                   content_type="application/json")
        assert response.status_code == 200, response.content[:300]
        answer = response.json()
        assert answer["rejected"] == [], answer
        return answer["accepted"], answer["duplicates"]
    path = tmp_path / "calls.json"
    if route == "json":
        path.write_text(json.dumps({"value": rows}))
    else:
        path = tmp_path / "calls.csv"
        path.write_text(export_csv_text([{k: "" if v is None else str(v)
                                          for k, v in row.items()} for row in rows]))
    try:
        call_command("import_pstn_calls", str(path), "--org", org.slug)
    except SystemExit as exc:
        assert exc.code == 0, capsys.readouterr()
    summary = capsys.readouterr().out.splitlines()[0]
    accepted, duplicates, rejected = (int(part.split()[-1]) for part in summary.split(", "))
    assert rejected == 0, summary
    return accepted, duplicates


def test_ids_that_differ_only_in_case_or_braces_are_one_call_charged_once(
        api_client, world, tmp_path, capsys, tally):
    @fuzz_settings(20)
    @given(case=guid_spellings(), routes=st.lists(st.sampled_from(["api", "json", "csv"]),
                                                  min_size=5, max_size=5),
           one_batch=st.booleans())
    def probe(case, routes, one_batch):
        guid, spellings = case

        def send_all():
            before = _balance(world)
            rows = [_call(spelling, days_ago=1) for spelling in spellings]
            if one_batch:
                sent = [tally.run(_send, routes[0], rows, world, api_client, tmp_path, capsys)]
            else:
                sent = [tally.run(_send, route, [row], world, api_client, tmp_path, capsys)
                        for route, row in zip(routes, rows, strict=False)]
            accepted = sum(a for a, _d in sent)
            duplicates = sum(d for _a, d in sent)
            stored = list(CallRecord.objects.filter(organization=world,
                                                    graph_id__icontains=guid))
            context = (spellings, routes[:len(spellings)], one_batch)
            assert (accepted, duplicates, len(stored)) == (1, len(spellings) - 1, 1), (
                f"accepted {accepted}, duplicates {duplicates}, stored "
                f"{[c.graph_id for c in stored]}", context)
            charge = stored[0].charge
            assert charge > 0, ("the call must cost credits for this test to mean anything",
                                stored[0].charged_to)
            assert before - _balance(world) == charge, (before, _balance(world), charge,
                                                          context)

        rolled_back(send_all)

    probe()
