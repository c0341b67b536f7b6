"""Ingestion hardening: one GUID is one call however it is spelled; a row with
text the database cannot hold is refused alone, naming the field; a call is never charged
more than the per-call limit, so the balance cannot overflow its column."""

import importlib
import io
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import Sum
from django.urls import reverse

from credits import products
from credits.models import CreditAccount, LedgerEntry
from credits.platform.services import Actor
from credits.selectors.billing import credit_balance
from tests.factories import TEST_DECK_CSV, call_record, graph_row, load_test_deck
from usage import ingest, rating
from usage.ingest import _TEXT_FIELDS, MAX_DURATION_S, canonical_id, text_problem
from usage.models import CallRecord
from usage.rating import MAX_CHARGE_PER_CALL, MAX_CONNECTION_FEE, MAX_RATE_PER_MINUTE
from usage.services import calls_ingest

from .conftest import fund

pytestmark = pytest.mark.django_db

GUID = "ab12cd34-5678-4abc-9def-0123456789ab"
ACTOR = Actor.system("test")


@pytest.fixture(autouse=True)
def own_deck_cache(monkeypatch):
    """Each test rolls back, and SQLite then gives the next organization the same pk and
    its deck the same version: the process's parsed-deck cache must not hand one test the
    deck of another (these tests load decks other than the usual one)."""
    from usage import selectors

    monkeypatch.setattr(selectors, "_decks", selectors._DeckCache())


def test_a_deck_loaded_again_from_version_1_is_not_served_from_the_cache(org):
    """The parsed-deck cache goes by the deck's version and load time: a deck deleted and
    loaded again restarts at version 1 and must still be read afresh."""
    from usage import selectors
    from usage.models import Rate, RateDeck

    load_test_deck(org)
    first = selectors.rate_deck_for(organization=org)
    RateDeck.objects.filter(organization=org).delete()
    Rate.objects.filter(organization=org).delete()
    load_test_deck(org, TEST_DECK_CSV + "outbound,34,Spain,ES,landline,0.05000,0.00,60,60,"
                                        f"{org.currency},2026-01-01\n")
    assert RateDeck.objects.get(organization=org).version == 1
    again = selectors.rate_deck_for(organization=org)
    assert again is not first
    assert again is selectors.rate_deck_for(organization=org)  # still a cache


def ingest_rows(org, rows):
    return calls_ingest(organization=org, rows=rows, source="api", actor=ACTOR)


# --- one GUID, one call ---------------------------------------------------------------


def test_canonical_id_lowers_and_unbraces_guids_only():
    assert canonical_id(GUID.upper()) == GUID
    assert canonical_id("{" + GUID + "}") == GUID
    assert canonical_id("{" + GUID.upper() + "}") == GUID
    # Not GUID-shaped: as it is.
    for other in ("CALL-1", "{" + GUID, GUID + "}", GUID.replace("-", ""),
                  "1835317186_112562680@61.221.3.176", "{" + GUID.upper() + "}x",
                  GUID.upper()[:-1] + "G"):
        assert canonical_id(other) == other


@pytest.mark.parametrize("spellings", [
    [GUID, GUID.upper(), "{" + GUID + "}"],
    ["{" + GUID.upper() + "}", GUID, " " + GUID.upper() + " "],
])
def test_one_guid_in_three_spellings_is_stored_and_charged_once(org, deck, spellings):
    fund(org, 10)
    results = [ingest_rows(org, [graph_row(s)]) for s in spellings]
    assert [(r.accepted, r.duplicates) for r in results] == [(1, 0), (0, 1), (0, 1)]
    assert list(CallRecord.objects.filter(organization=org)
                .values_list("graph_id", flat=True)) == [GUID]
    assert credit_balance(organization=org) == Decimal("9.98")
    assert LedgerEntry.objects.filter(account__organization=org,
                                      idempotency_key=f"call:{GUID}").count() == 1


def test_spellings_of_one_guid_within_one_batch_count_once(org, deck):
    result = ingest_rows(org, [graph_row(GUID.upper()), graph_row("{" + GUID + "}"),
                               graph_row(GUID)])
    assert (result.accepted, result.duplicates, result.charged) == (1, 2, 1)


def test_a_row_stored_before_ids_were_canonical_is_still_a_duplicate(org, deck):
    """Rows stored earlier keep the spelling they came with (upper case, braces)."""
    legacy = [call_record(org, graph_id=GUID.upper()),
              call_record(org, graph_id="{b0000000-0000-4000-8000-00000000000a}")]
    CallRecord.objects.bulk_create(legacy)
    result = ingest_rows(org, [graph_row(GUID), graph_row("{" + GUID + "}"),
                               graph_row("B0000000-0000-4000-8000-00000000000A")])
    assert (result.accepted, result.duplicates, result.charged) == (0, 3, 0)


def test_ids_that_are_not_guids_keep_their_case(org, deck):
    result = ingest_rows(org, [graph_row("CALL-1"), graph_row("call-1")])
    assert result.accepted == 2
    assert set(CallRecord.objects.values_list("graph_id", flat=True)) == {"CALL-1", "call-1"}


def test_a_guid_shaped_call_id_is_canonical_too_and_others_stay(org, deck):
    ingest_rows(org, [graph_row("a", callId="{" + GUID.upper() + "}"),
                      graph_row("b", callId="Call-B@10.0.0.1")])
    assert dict(CallRecord.objects.values_list("graph_id", "call_id")) == {
        "a": GUID, "b": "Call-B@10.0.0.1"}


def test_the_same_guid_in_two_organizations_is_two_calls(org, other_org, deck):
    load_test_deck(other_org, TEST_DECK_CSV.replace(",USD,", f",{other_org.currency},"))
    assert ingest_rows(org, [graph_row(GUID)]).accepted == 1
    assert ingest_rows(other_org, [graph_row(GUID.upper(), currency="EUR")]).accepted == 1


# --- migration 0002: reports collisions, changes nothing -------------------------------

migration_0002 = importlib.import_module("usage.migrations.0002_guid_collisions")


def test_migration_0002_reports_colliding_spellings_and_changes_nothing(org, other_org,
                                                                          caplog):
    second = "c0ffee00-0000-4000-8000-0000000000ff"
    CallRecord.objects.bulk_create([
        call_record(org, graph_id=GUID), call_record(org, graph_id=GUID.upper()),
        call_record(org, graph_id="{" + GUID + "}"),
        call_record(org, graph_id=second.upper()),  # alone in its organization: fine
        call_record(other_org, graph_id=second),
        call_record(org, graph_id="CALL-1"), call_record(org, graph_id="call-1"),  # no GUID
        call_record(other_org, graph_id="{" + second.upper() + "}x"),  # not GUID-shaped
    ])
    before = sorted(CallRecord.objects.values_list("pk", "organization_id", "graph_id"))
    with caplog.at_level(logging.WARNING, logger="usage.migrations"):
        migration_0002.report_collisions(apps, None)
    assert sorted(CallRecord.objects.values_list("pk", "organization_id", "graph_id")) == before
    found = migration_0002.collisions(CallRecord)
    assert list(found) == [(org.pk, GUID)]
    assert sorted(g for _pk, g in found[(org.pk, GUID)]) == sorted(
        [GUID, GUID.upper(), "{" + GUID + "}"])
    assert f"organization {org.pk}, id {GUID}" in caplog.text
    assert second not in caplog.text and "CALL-1" not in caplog.text


def test_migration_0002_is_silent_without_collisions(org, caplog):
    CallRecord.objects.bulk_create([call_record(org, graph_id=GUID),
                                    call_record(org, graph_id=GUID.replace("a", "b"))])
    with caplog.at_level(logging.WARNING, logger="usage.migrations"):
        migration_0002.report_collisions(apps, None)
    assert caplog.text == ""


# --- text the database cannot hold ---------------------------------------------------

# Every field parse_row reads as text, with a valid value for the rest of the row.
TEXT_INPUTS = ["id", "callType", *_TEXT_FIELDS, "usageCountryCode", "tenantCountryCode",
               "currency", "startDateTime", "endDateTime", "duration", "charge",
               "connectionCharge"]
BAD_TEXTS = {"NUL": "x\x00y", "surrogate": "x\udfffy", "surrogate only": "\ud800"}


def test_text_problem_is_none_for_text_and_names_nul_and_surrogates():
    assert text_problem("") is None and text_problem("Zoë 東京 🎉") is None
    assert text_problem("a\x00") == ingest.NUL_CHARACTER
    assert text_problem("a\udfff") == ingest.LONE_SURROGATE
    assert text_problem("\ud83c\udf89") == ingest.LONE_SURROGATE  # a pair in UTF-16 form


@pytest.mark.parametrize("kind", sorted(BAD_TEXTS))
@pytest.mark.parametrize("field", TEXT_INPUTS)
def test_a_bad_text_in_any_field_rejects_that_row_only(org, deck, field, kind):
    bad = graph_row("bad", **{field: BAD_TEXTS[kind]})
    result = ingest_rows(org, [graph_row("good-1"), bad, graph_row("good-2")])
    assert result.accepted == 2
    [rejected] = result.rejected
    assert rejected["index"] == 1 and list(rejected["errors"]) == [field]
    assert rejected["errors"][field] == (
        ingest.NUL_CHARACTER if kind == "NUL" else ingest.LONE_SURROGATE)
    # What is reported can be encoded (JSON, the upload page, the command's output).
    json.dumps(result.rejected, ensure_ascii=False).encode("utf-8")
    assert set(CallRecord.objects.values_list("graph_id", flat=True)) == {"good-1", "good-2"}


def test_the_api_stores_the_good_calls_beside_a_surrogate(api, org, deck):
    body = {"value": [graph_row("good"), graph_row("x\udfffy", callId="c"),
                      graph_row("bad-name", userDisplayName="Eve \udfff"),
                      graph_row("bad-nul", destinationName="Fr\x00ance")]}
    response = api.post("/pstn-calls", body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(r["index"], list(r["errors"])) for r in answer["rejected"]] == [
        (1, ["id"]), (2, ["userDisplayName"]), (3, ["destinationName"])]
    assert answer["rejected"][0]["id"] == "x\\udfffy"
    assert list(CallRecord.objects.values_list("graph_id", flat=True)) == ["good"]


def _json_file(rows) -> bytes:
    return json.dumps({"value": rows}).encode()  # ASCII: the surrogate as \udfff


def test_the_upload_form_stores_the_good_calls_beside_a_surrogate(
        client_for, make_person, org, deck, django_capture_on_commit_callbacks):
    admin = client_for(make_person("billing_administrator"))
    content = _json_file([graph_row("good"), graph_row("x\udfffy", callId="c"),
                          graph_row("bad", callerNumber="\udfff")])
    # The file is imported by a background job, started on commit (eager in tests).
    with django_capture_on_commit_callbacks(execute=True):
        posted = admin.post(reverse("reports_pstn_import"),
                            {"file": SimpleUploadedFile("calls.json", content)})
    assert posted.status_code == 302
    page = admin.get(posted["Location"])
    assert page.status_code == 200
    result = page.context["result"]
    assert result.accepted == 1 and len(result.rejected) == 2
    assert b"x\\udfffy" in page.content and b"callerNumber" in page.content
    assert list(CallRecord.objects.values_list("graph_id", flat=True)) == ["good"]


def test_import_pstn_calls_stores_the_good_calls_beside_a_surrogate(tmp_path, org, deck):
    path = tmp_path / "calls.json"
    path.write_bytes(_json_file([graph_row("good"), graph_row("x\udfff\x00y", callId="c"),
                                 graph_row("bad", operator="\ud800")]))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("import_pstn_calls", str(path), "--org", org.slug, stdout=out,
                     stderr=io.StringIO())
    assert exit_.value.code == 1  # some rows were rejected; the rest is stored
    text = out.getvalue()
    text.encode("utf-8")  # a real terminal takes it
    assert "imported 1, duplicates 0, rejected 2" in text
    assert "row 2 (id x\\udfff\\x00y): id: contains a NUL character" in text
    assert "row 3 (id bad): operator: contains a lone UTF-16 surrogate" in text
    assert list(CallRecord.objects.values_list("graph_id", flat=True)) == ["good"]


# --- the per-call limit --------------------------------------------------------------

MAX_DECK = (
    "direction,prefix,destination,country,number_type,rate_per_minute,connection_fee,"
    "first_increment_s,next_increment_s,currency,effective_from\n"
    f"outbound,1,United States and Canada,US,landline,{MAX_RATE_PER_MINUTE},"
    f"{MAX_CONNECTION_FEE},1,1,USD,2026-01-01\n"
    f"inbound_toll_free,1800,US toll-free,US,toll_free,{MAX_RATE_PER_MINUTE},"
    f"{MAX_CONNECTION_FEE},1,1,USD,2026-01-01\n"
)
# At the maximum rate and fee, billed by the second: the longest call within the limit.
AT_LIMIT_S = int((MAX_CHARGE_PER_CALL - MAX_CONNECTION_FEE) * 60 / MAX_RATE_PER_MINUTE)


def test_the_limit_is_sane_for_the_columns():
    # One call fits CallRecord.charge (12 digits, 2 places), a full batch moves the balance
    # (14 digits) by at most a ten-thousandth of its range.
    assert MAX_CHARGE_PER_CALL < Decimal("1e10")
    assert MAX_CHARGE_PER_CALL * ingest.FILE_ROWS_PER_BATCH <= Decimal("1e12") / 10_000
    # The longest call at the highest rate exceeds it: such a call is refused, not charged.
    longest = MAX_CONNECTION_FEE + MAX_RATE_PER_MINUTE * MAX_DURATION_S / 60
    assert longest > MAX_CHARGE_PER_CALL


def test_a_call_over_the_limit_is_unrated_and_takes_no_pool_minutes():
    from usage.decks import parse_deck

    deck = rating.RateDeck(parse_deck(MAX_DECK, "USD")[0], "USD")
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)
    skus = frozenset({products.DOMESTIC_PLAN, products.CREDITS})

    def call(duration, call_type="user_out", callee="+12125550100"):
        return rating.Call(call_type, "", callee, start, duration, "US", skus)

    asked = []

    def pool(kind, country, wanted):
        asked.append(wanted)
        return 0

    at = rating.rate_call(call(AT_LIMIT_S), deck, pool)
    assert (at.status, at.charge) == ("rated", MAX_CHARGE_PER_CALL)
    for over in (call(AT_LIMIT_S + 1), call(MAX_DURATION_S),
                 call(MAX_DURATION_S, "ucap_in", "+18005550100")):
        asked.clear()
        r = rating.rate_call(over, deck, pool)
        assert (r.status, r.reason, r.charge, r.pool_minutes) == (
            "unrated", "charge_over_limit", Decimal("0.00"), 0)
        assert asked == []


def test_the_maximum_rate_on_week_long_calls_many_times_keeps_the_balance_exact(api, org):
    """Batches of 1000 calls at the highest rate: week-long ones are refused (unrated, with
    the reason), the ones at the limit are charged exactly; no batch fails."""
    load_test_deck(org, MAX_DECK)
    fund(org, 1000)
    batches, per_batch = 10, 1000
    for b in range(batches):
        rows = [graph_row(f"b{b}-{i}", duration=MAX_DURATION_S if i % 2 else AT_LIMIT_S)
                for i in range(per_batch)]
        response = api.post("/pstn-calls", {"value": rows})
        assert response.status_code == 200, response.content[:500]
        assert response.json()["accepted"] == per_batch
    at_limit = batches * per_batch // 2
    expected = Decimal("1000.00") - at_limit * MAX_CHARGE_PER_CALL
    account = CreditAccount.objects.get(organization=org)
    assert account.balance == expected == credit_balance(organization=org)
    assert LedgerEntry.objects.filter(account=account).aggregate(s=Sum("amount"))["s"] \
        == expected
    calls = CallRecord.objects.filter(organization=org)
    assert calls.filter(rated=False, unrated_reason="charge_over_limit",
                        duration_s=MAX_DURATION_S, charge=0).count() == at_limit
    assert calls.filter(rated=True, charge=MAX_CHARGE_PER_CALL).count() == at_limit
    # Posting it all again charges nothing more.
    rows = [graph_row(f"b0-{i}", duration=AT_LIMIT_S) for i in range(per_batch)]
    assert api.post("/pstn-calls", {"value": rows}).json()["duplicates"] == per_batch
    account.refresh_from_db()
    assert account.balance == expected


def test_the_unrated_list_explains_the_limit(client_for, make_person, org):
    load_test_deck(org, MAX_DECK)
    ingest_rows(org, [graph_row("long", duration=MAX_DURATION_S)])
    admin = client_for(make_person("billing_administrator"))
    page = admin.get(reverse("reports_pstn_import"))
    assert "the call would cost more than 10000.00, the limit for one call" in \
        page.content.decode()


def test_authorize_never_allows_a_call_longer_than_one_call_may_be_charged(api, org):
    """A large balance must not authorize a call that rating would then leave unrated (and
    so uncharged): the longest allowed call is charged, in full, at the limit."""
    from tests.factories import PersonFactory

    from .conftest import licensed

    load_test_deck(org, MAX_DECK)
    fund(org, 1_000_000)
    caller = licensed(PersonFactory(organization=org, upn="big.spender@contoso.com",
                                    usage_location="US"), "MCOEV", "MCOPSTNC")
    out = api.post("/calls/authorize", {"userPrincipalName": caller.upn,
                                        "calleeNumber": "+12125550100",
                                        "callType": "user_out"}).json()
    assert (out["allowed"], out["chargedTo"], out["maxDurationSeconds"]) == (
        True, "credits", AT_LIMIT_S)
    row = graph_row("longest", userPrincipalName=caller.upn, duration=AT_LIMIT_S)
    assert api.post("/pstn-calls", {"value": [row]}).json()["accepted"] == 1
    call = CallRecord.objects.get(graph_id="longest")
    assert (call.rated, call.charge) == (True, MAX_CHARGE_PER_CALL)


def test_batches_run_with_the_cyclic_collector_paused_and_give_it_back(org, monkeypatch):
    """calls_ingest and direct_routing_ingest pause Python's cyclic garbage collector for
    the batch (credits.platform.gcpause): off during it, on again after it, after a failure
    too; left paused when it was paused before (by another thread's batch)."""
    import gc

    from usage import direct_routing
    from usage.direct_routing_store import direct_routing_ingest
    from usage.services import calls_ingest

    from .test_direct_routing import GRAPH_PAGE

    load_test_deck(org)
    dr_row = GRAPH_PAGE["value"][0]
    for ingest_batch, module, name, row in (
            (calls_ingest, rating, "assess",
             lambda i: graph_row(f"gc-{i}", userPrincipalName="ana@contoso.com")),
            (direct_routing_ingest, direct_routing, "parse_row",
             lambda i: {**dr_row, "id": f"gc-dr-{i}", "correlationId": f"gc-dr-{i}"})):
        seen = []
        original = getattr(module, name)

        def watching(*args, original=original, seen=seen):
            seen.append(gc.isenabled())
            return original(*args)

        def failing(*args):
            raise RuntimeError("a bug in the middle of a batch")

        monkeypatch.setattr(module, name, watching)
        assert gc.isenabled()
        result = ingest_batch(organization=org, rows=[row(i) for i in range(3)], source="api")
        assert result.accepted == 3 and seen == [False] * 3 and gc.isenabled(), name
        monkeypatch.setattr(module, name, failing)
        with pytest.raises(RuntimeError):
            ingest_batch(organization=org, rows=[row("x")], source="api")
        assert gc.isenabled()
        monkeypatch.setattr(module, name, watching)
        gc.disable()
        try:
            ingest_batch(organization=org, rows=[row("y")], source="api")
            assert not gc.isenabled()
        finally:
            gc.enable()
