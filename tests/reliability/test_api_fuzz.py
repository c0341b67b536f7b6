"""The JSON API fuzzed from its own OpenAPI schema (schemathesis): every operation of
/api/v1/openapi.json, valid and invalid inputs, with a valid bearer token of an organization
that has people, licenses, a rate deck, a balance and stored calls. No answer may be a
5xx, and every answer must match the schema (status code, content type, body).

The Django app is called in-process through its WSGI handler, in the test's transaction.
"""

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.api import api
from credits.platform.services import Actor
from tests.factories import PersonFactory, funded_account, give_licenses, graph_row, load_test_deck
from usage.services import api_token_create, calls_ingest

# Per operation and generation mode (valid / invalid input). Kept small for CI time.
EXAMPLES_PER_OPERATION = 60
TOKEN = {}


@pytest.fixture
def api_schema(db, org, other_org):
    load_test_deck(org)
    funded_account(org, "500.00", auto_recharge_enabled=False)
    person = PersonFactory(organization=org, display_name="Dom User", usage_location="US")
    give_licenses(person, "MCOEV", "MCOPSTN1", "MCOPSTNC")
    result = calls_ingest(organization=org, rows=[
        graph_row(f"fuzz-{i}", userPrincipalName=person.upn, duration=30 + i,
                  calleeNumber=number, startDateTime=f"2026-11-02T0{i}:00:00Z",
                  endDateTime=f"2026-11-02T0{i}:10:00Z")
        for i, number in enumerate(["+12125550100", "+33123456789", "+447700900000"])
    ], source="api")
    assert result.accepted == 3
    # Another organization's data must never appear in this token's answers.
    calls_ingest(organization=other_org, rows=[graph_row("theirs")], source="api")
    TOKEN["raw"] = api_token_create(organization=org, name="fuzz", actor=Actor.system("t"))[1]
    cache.clear()  # the rate-limit windows of earlier tests
    # As Django's test client does: a request must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
        yield schema
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


OPERATIONS = [f"{method.upper()} {path}"
              for path, methods in api.get_openapi_schema()["paths"].items()
              for method in methods]


def test_the_fuzzed_operations_are_every_operation_served(api_schema):
    served = {op.ok().label for op in api_schema.get_all_operations()}
    assert served == set(OPERATIONS) and len(served) >= 4


# The operations that take a fromDateTime-toDateTime range (see the comment in the test).
RANGED = ("GET /api/v1/pstn-calls", "GET /api/v1/direct-routing-calls")


@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_api_operation_answers_per_its_schema_and_never_5xx(api_schema, label, mode,
                                                                  reliability):
    operation = next(op.ok() for op in api_schema.get_all_operations()
                     if op.ok().label == label)
    headers = {"Authorization": f"Bearer {TOKEN['raw']}"}
    seen = {"cases": 0, "server_errors": 0}
    # A range is one that OpenAPI cannot state (toDateTime after fromDateTime, at most 90
    # days): a schema-valid range may get the documented 400; every other check still runs.
    excluded = [positive_data_acceptance] if label in RANGED else []

    @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                         derandomize=True, suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    def probe(case):
        response = case.call(headers=headers)
        seen["cases"] += 1
        if response.status_code >= 500:
            seen["server_errors"] += 1
        assert response.status_code < 500, (case.method, case.path, case.query, case.body,
                                            response.text[:500])
        assert "theirs" not in response.text
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    try:
        probe()
    finally:
        reliability.fuzz(seen["cases"], server_errors=seen["server_errors"])


def test_answers_with_stored_calls_match_the_schema_too(api_schema, reliability):
    """Random ranges rarely hit the stored calls: ask for them, and for another org's id."""
    headers = {"Authorization": f"Bearer {TOKEN['raw']}"}
    operations = {op.ok().label: op.ok() for op in api_schema.get_all_operations()}
    cases = [
        operations["GET /api/v1/pstn-calls"].Case(query={
            "fromDateTime": "2026-11-01T00:00:00Z", "toDateTime": "2026-11-30T00:00:00Z"}),
        operations["POST /api/v1/pstn-calls"].Case(body={"value": [
            graph_row("fuzz-0"), graph_row("theirs"), {"id": "<b>x</b>"}]}),
        operations["POST /api/v1/calls/authorize"].Case(body={
            "userPrincipalName": "dom.user@contoso-test.example",
            "calleeNumber": "+33123456789", "callType": "user_out"}),
        operations["GET /api/v1/credits/balance"].Case(),
    ]
    bodies = []
    for case in cases:
        response = case.call(headers=headers)
        assert response.status_code == 200, response.text
        case.validate_response(response, headers=headers)
        bodies.append(response.json())
    reliability.fuzz(len(cases))
    assert len(bodies[0]["value"]) == 3 and bodies[0]["@odata.count"] == 3
    # Same id as another organization's call: new here, not a duplicate of theirs.
    assert (bodies[1]["accepted"], bodies[1]["duplicates"], len(bodies[1]["rejected"])) == (
        1, 1, 1)
    assert bodies[3]["currency"] == "USD" and bodies[3]["balance"].startswith("49")
