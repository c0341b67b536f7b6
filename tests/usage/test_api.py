"""The JSON API: the worked examples of charging-rules.md end to end (POST the call, GET it
back as rated), call authorization, paging, tokens and error shapes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from credits.platform.services import Actor
from credits.selectors.billing import credit_balance
from tests.factories import PersonFactory, graph_row
from usage.models import ApiToken, CallRecord
from usage.services import api_token_create, api_token_revoke

from .conftest import fund, licensed

pytestmark = pytest.mark.django_db

DAY = "2026-11-02"


def rated(api, row):
    response = api.post("/pstn-calls", {"value": [row]})
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    page = api.get("/pstn-calls", {"fromDateTime": f"{DAY}T00:00:00Z",
                                   "toDateTime": f"{DAY}T23:59:59Z"}).json()
    return next(r for r in page["value"] if r["id"] == row["id"])


def person(org, name, country, *skus):
    p = PersonFactory(organization=org, display_name=name, usage_location=country)
    return licensed(p, *skus)


@pytest.fixture
def dom(org, deck):
    return person(org, "Dom User", "US", "MCOEV", "MCOPSTN1", "MCOPSTNC")


def test_example_1_domestic_plan_pool_three_minutes(api, dom):
    r = rated(api, graph_row("e1", userPrincipalName=dom.upn, duration=125))
    assert (r["chargedTo"], r["poolMinutes"], r["charge"], r["licenseCapability"]) == (
        "plan_pool", 3, 0.0, "MCOPSTN1")


def test_example_2_used_up_pool_bills_credits(api, dom, org):
    fund(org, 100)
    # 50 hours use up the 3000 minutes of the one Domestic Calling Plan license.
    first = rated(api, graph_row("e2-fill", userPrincipalName=dom.upn, duration=180000))
    assert first["poolMinutes"] == 3000
    r = rated(api, graph_row("e2", userPrincipalName=dom.upn, duration=125,
                             startDateTime=f"{DAY}T10:00:00Z"))
    assert (r["chargedTo"], r["billableSeconds"], r["charge"], r["licenseCapability"]) == (
        "credits", 180, 0.06, "MCOPSTNPP")
    assert credit_balance(organization=org) == Decimal("99.94")


def test_example_3_international_on_domestic_plan(api, dom):
    r = rated(api, graph_row("e3", userPrincipalName=dom.upn, calleeNumber="+33123456789",
                             duration=61))
    assert (r["chargedTo"], r["billableSeconds"], r["charge"]) == ("credits", 120, 0.05)


def test_example_4_di_plan_international_pool(api, org, deck):
    di = person(org, "DI User", "US", "MCOEV", "MCOPSTN2", "MCOPSTNC")
    r = rated(api, graph_row("e4", userPrincipalName=di.upn, calleeNumber="+33612345678",
                             duration=10))
    assert (r["chargedTo"], r["poolMinutes"], r["charge"]) == ("plan_pool", 1, 0.0)


def test_example_5_pay_as_you_go(api, org, deck):
    fr = person(org, "FR Payg", "FR", "MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC")
    r = rated(api, graph_row("e5", userPrincipalName=fr.upn, calleeNumber="+33123456789",
                             duration=30, usageCountryCode="FR"))
    assert (r["chargedTo"], r["billableSeconds"], r["charge"]) == ("credits", 60, 0.02)


def test_example_6_toll_free_inbound(api, deck):
    r = rated(api, graph_row("e6", callType="ucap_in", calleeNumber="+18005550100",
                             callerNumber="+12125550100", duration=600,
                             inventoryType="TollFree"))
    assert (r["chargedTo"], r["billableSeconds"], r["charge"]) == ("credits", 600, 0.3)


def test_example_7_user_in_free(api, dom):
    r = rated(api, graph_row("e7", userPrincipalName=dom.upn, callType="user_in",
                             calleeNumber="+14255550100", callerNumber="+33123456789",
                             duration=5000))
    assert (r["chargedTo"], r["charge"]) == ("free", 0.0)


def test_example_8_conference_dial_out_zone_a(api, org, deck):
    organizer = person(org, "Organizer", "US", "MCOMEETADD", "MCOPSTNC")
    r = rated(api, graph_row("e8", userPrincipalName=organizer.upn, callType="conf_out",
                             calleeNumber="+442071234567", duration=300))
    assert (r["chargedTo"], r["poolMinutes"], r["charge"]) == ("conference_pool", 5, 0.0)


def test_example_9_conference_dial_out_outside_zone_a(api, org, deck):
    organizer = person(org, "Organizer", "US", "MCOMEETADD", "MCOPSTNC")
    r = rated(api, graph_row("e9", userPrincipalName=organizer.upn, callType="conf_out",
                             calleeNumber="+97142345678", duration=90))
    assert (r["chargedTo"], r["billableSeconds"], r["charge"]) == ("credits", 120, 0.3)


def test_example_10_premium(api, dom):
    r = rated(api, graph_row("e10", userPrincipalName=dom.upn, calleeNumber="+33951234567",
                             duration=60))
    assert (r["chargedTo"], r["connectionCharge"], r["charge"]) == ("credits", 0.15,
                                                                    0.95)


def test_example_11_authorize_refuses_on_zero_balance(api, dom):
    body = {"userPrincipalName": dom.upn, "calleeNumber": "+33123456789",
            "callType": "user_out"}
    assert api.post("/calls/authorize", body).json() == {
        "allowed": False, "reason": "insufficient_balance", "chargedTo": "credits",
        "maxDurationSeconds": None}


def test_example_12_authorize_refuses_without_credits_license(api, org, deck):
    fund(org, 50)
    p = person(org, "No Credits", "US", "MCOEV", "MCOPSTN1")
    body = {"userPrincipalName": p.upn, "calleeNumber": "+33123456789", "callType": "user_out"}
    assert api.post("/calls/authorize", body).json()["reason"] == "no_credits_license"


def test_example_13_zero_seconds(api, dom):
    r = rated(api, graph_row("e13", userPrincipalName=dom.upn, calleeNumber="+33951234567",
                             duration=0))
    assert (r["chargedTo"], r["charge"], r["billableSeconds"]) == ("free", 0.0, 0)


def test_example_14_us_to_canada_domestic(api, dom):
    r = rated(api, graph_row("e14", userPrincipalName=dom.upn, calleeNumber="+14165550100",
                             duration=60))
    assert (r["chargedTo"], r["charge"]) == ("plan_pool", 0.0)


# --- authorization ---------------------------------------------------------------------------


def test_authorize_max_duration_counts_fee_and_increments(api, org, dom):
    fund(org, 2)
    body = {"userPrincipalName": dom.upn, "calleeNumber": "+33951234567", "callType": "user_out"}
    out = api.post("/calls/authorize", body).json()
    # 2.00 - 0.15 fee = 1.85 at 0.80/min -> 2 whole minutes (1.75 total), a third costs 2.55.
    assert out == {"allowed": True, "reason": None, "chargedTo": "credits",
                   "maxDurationSeconds": 120}


def test_authorize_balance_of_one_cent_does_not_buy_an_expensive_first_block(api, org, dom):
    fund(org, Decimal("0.01"))
    body = {"userPrincipalName": dom.upn, "calleeNumber": "+33951234567", "callType": "user_out"}
    out = api.post("/calls/authorize", body).json()
    assert (out["allowed"], out["reason"]) == (False, "insufficient_balance")


def test_authorize_pool_call_allowed_with_pool_minutes(api, dom):
    body = {"userPrincipalName": dom.upn, "calleeNumber": "+12125550100", "callType": "user_out"}
    out = api.post("/calls/authorize", body).json()
    assert (out["allowed"], out["chargedTo"], out["maxDurationSeconds"]) == (
        True, "plan_pool", 3000 * 60)


def test_authorize_pool_call_counts_the_minutes_the_pool_already_gave(api, org, dom):
    from django.utils import timezone

    from credits.services.licenses import pool_key_for, pools_take_minutes

    now = timezone.now()
    key = pool_key_for(kind="domestic", country=dom.usage_location, at=now)
    assert pools_take_minutes(organization=org, requests=[(key, 10, now)]) == [10]
    body = {"userPrincipalName": dom.upn, "calleeNumber": "+12125550100", "callType": "user_out"}
    out = api.post("/calls/authorize", body).json()
    assert (out["allowed"], out["chargedTo"], out["maxDurationSeconds"]) == (
        True, "plan_pool", 2990 * 60)


@pytest.mark.parametrize(("body", "reason"), [
    ({"userPrincipalName": "nobody@x.example", "calleeNumber": "+33123456789",
      "callType": "user_out"}, "unknown_user"),
    ({"userPrincipalName": "DOM", "calleeNumber": "+33 1234****", "callType": "user_out"},
     "invalid_number"),
    ({"userPrincipalName": "DOM", "calleeNumber": "+1234567890", "callType": "user_out"},
     "invalid_number"),
    ({"userPrincipalName": "DOM", "calleeNumber": "+4930123456789", "callType": "user_out"},
     "no_rate"),
    ({"userPrincipalName": "DOM", "calleeNumber": "+33123456789", "callType": "warp"},
     "unknown_call_type"),
])
def test_authorize_refusal_codes(api, dom, body, reason):
    body = {**body, "userPrincipalName": body["userPrincipalName"].replace("DOM", dom.upn)}
    out = api.post("/calls/authorize", body).json()
    assert (out["allowed"], out["reason"]) == (False, reason)


def test_authorize_inbound_to_user_number_is_free(api, dom):
    body = {"userPrincipalName": dom.upn, "calleeNumber": "+14255550100", "callType": "user_in"}
    assert api.post("/calls/authorize", body).json() == {
        "allowed": True, "reason": None, "chargedTo": "free", "maxDurationSeconds": None}


# --- ingestion through the API ------------------------------------------------------------------


def test_microsoft_sample_page_imports(api, org, deck):
    PersonFactory(organization=org, display_name="Richard Malk", upn="richard.malk@contoso.com")
    sample = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(x)",
        "@odata.count": 1000,
        "value": [graph_row(
            "9c4984c7-6c3c-427d-a30c-bd0b2eacee90", callId="1835317186_112562680@61.221.3.176",
            userId="db03c14b-06eb-4189-939b-7cbf3a20ba27",
            userPrincipalName="richard.malk@contoso.com", userDisplayName="Richard Malk",
            startDateTime="2019-11-01T00:00:08.2589935Z",
            endDateTime="2019-11-01T00:03:47.2589935Z", duration=219, charge=0.00,
            callType="user_in", calleeNumber="+1234567890", callerNumber="+0123456789")],
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/...?$skip=1000",
    }
    assert api.post("/pstn-calls", sample).json() == {"accepted": 1, "duplicates": 0,
                                                      "rejected": []}
    call = CallRecord.objects.get(organization=org)
    assert (call.person.display_name, call.duration_s, call.charged_to) == (
        "Richard Malk", 219, "free")
    assert call.reported_capability == "MCOPSTNU"
    assert call.reported_charge == Decimal("0")


def test_duplicates_are_counted_and_not_charged_again(api, org, dom):
    fund(org, 10)
    row = graph_row("dup-1", userPrincipalName=dom.upn, calleeNumber="+33123456789",
                    duration=61)
    assert api.post("/pstn-calls", {"value": [row, row]}).json() == {
        "accepted": 1, "duplicates": 1, "rejected": []}
    assert api.post("/pstn-calls", {"value": [row]}).json()["duplicates"] == 1
    assert credit_balance(organization=org) == Decimal("9.95")
    assert CallRecord.objects.filter(organization=org).count() == 1


def test_rejected_rows_name_the_field_and_valid_rows_are_stored(api, org, deck):
    rows = [graph_row("ok-1"), graph_row("bad-1", duration="long"),
            graph_row("", startDateTime="yesterday"), "not an object",
            graph_row("odd-type", callType="user_teleport")]
    out = api.post("/pstn-calls", {"value": rows}).json()
    assert out["accepted"] == 2
    rejected = {r["index"]: r for r in out["rejected"]}
    assert rejected[1]["id"] == "bad-1" and "duration" in rejected[1]["errors"]
    assert set(rejected[2]["errors"]) == {"id", "startDateTime"}
    assert rejected[3]["errors"] == {"row": "expected a JSON object"}
    odd = CallRecord.objects.get(organization=org, graph_id="odd-type")
    assert (odd.rated, odd.unrated_reason) == (False, "unknown_call_type")


@pytest.mark.parametrize(("body", "status"), [
    (b"{not json", 400),
    (b'{"value": "rows"}', 422),
    (b'[]', 422),
    (b'{}', 422),
])
def test_malformed_bodies_get_a_clear_4xx(client, token, body, status):
    response = client.post("/api/v1/pstn-calls", body, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == status
    assert response.json()["detail"] and response.json()["code"]


def test_more_than_1000_rows_is_refused(api, deck):
    out = api.post("/pstn-calls", {"value": [graph_row(f"r{i}") for i in range(1001)]})
    assert out.status_code == 422
    assert "1000" in out.json()["detail"]
    assert CallRecord.objects.count() == 0


# --- reading calls back -------------------------------------------------------------------------


def test_get_pages_with_next_link_and_refuses_over_90_days(api, org, deck, settings):
    import usage.api

    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [graph_row(f"p{i}", startDateTime=(start + timedelta(minutes=i)).isoformat())
            for i in range(25)]
    api.post("/pstn-calls", {"value": rows})
    original = usage.api.PAGE_SIZE
    usage.api.PAGE_SIZE = 10
    try:
        seen, params, pages = [], {"fromDateTime": "2026-11-01T00:00:00Z",
                                   "toDateTime": "2026-11-02T00:00:00Z"}, 0
        url = None
        while True:
            page = (api.get("/pstn-calls", params) if url is None
                    else api.get(url.split("/api/v1")[1])).json()
            pages += 1
            seen += [r["id"] for r in page["value"]]
            url = page.get("@odata.nextLink")
            if not url:
                break
    finally:
        usage.api.PAGE_SIZE = original
    assert pages == 3
    assert seen == [f"p{i}" for i in range(25)]
    too_long = api.get("/pstn-calls", {"fromDateTime": "2026-01-01T00:00:00Z",
                                       "toDateTime": "2026-04-02T00:00:00Z"})
    assert too_long.status_code == 400 and "90 days" in too_long.json()["detail"]
    assert api.get("/pstn-calls", {"fromDateTime": "yesterday",
                                   "toDateTime": "2026-04-02"}).status_code == 422
    assert api.get("/pstn-calls", {**params, "$skiptoken": "garbage"}).status_code == 400


# --- tokens ------------------------------------------------------------------------------------


def test_wrong_missing_and_revoked_tokens_get_401(client, org, deck):
    token, raw = api_token_create(organization=org, name="t", actor=Actor.system("test"))
    url = "/api/v1/calls/authorize"
    body = {"userPrincipalName": "x", "calleeNumber": "+1", "callType": "user_out"}
    assert client.post(url, body, content_type="application/json").status_code == 401
    assert client.post(url, body, content_type="application/json",
                       HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    ok = client.post(url, body, content_type="application/json",
                     HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ok.status_code == 200
    api_token_revoke(token=token, actor=Actor.system("test"))
    revoked = client.post(url, body, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert revoked.status_code == 401 and revoked.json()["code"] == "unauthorized"


def test_token_is_stored_hashed(org):
    token, raw = api_token_create(organization=org, name="t", actor=Actor.system("test"))
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw not in (stored.token_hash, stored.prefix) and raw.startswith(stored.prefix)


def test_a_token_of_another_organization_sees_nothing_of_this_one(client, api, org, other_org,
                                                                  deck):
    api.post("/pstn-calls", {"value": [graph_row("mine")]})
    _t, raw = api_token_create(organization=other_org, name="t", actor=Actor.system("test"))
    page = client.get("/api/v1/pstn-calls", {"fromDateTime": "2026-11-01T00:00:00Z",
                                            "toDateTime": "2026-11-30T00:00:00Z"},
                      HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert page["value"] == []
    # The same id is a new call for the other organization, not a duplicate of ours.
    out = client.post("/api/v1/pstn-calls", {"value": [graph_row("mine")]},
                      content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert out.json()["accepted"] == 1


def test_rate_limit_per_token(api, settings, deck):
    from django.core.cache import cache

    cache.clear()
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    body = {"userPrincipalName": "x", "calleeNumber": "+1", "callType": "user_out"}
    codes = [api.post("/calls/authorize", body).status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429


def test_openapi_schema_describes_every_endpoint_and_errors(client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    assert {"/api/v1/pstn-calls", "/api/v1/calls/authorize"} <= set(paths)
    for op in (paths["/api/v1/pstn-calls"]["post"], paths["/api/v1/pstn-calls"]["get"],
               paths["/api/v1/calls/authorize"]["post"]):
        assert {"200", "400", "401", "422"} <= set(op["responses"])
    assert "Error" in schema["components"]["schemas"]
