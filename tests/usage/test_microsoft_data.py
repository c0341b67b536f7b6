"""Microsoft's data as it really comes (issue 16), with fixtures written from Microsoft's
documentation: the PSTN usage report's "Fields in the export" and Graph's pstnCallLogRow.

A French tenant's masked rows are rated by their visible prefix or left for review; the
CSV header is matched whatever its case, spaces or BOM, and unknown columns are ignored
with one warning; Microsoft's field limits and enums hold; rows without a context get the
rating's; the Microsoft-format zip reads back into identical stored values; the API masks
and speaks Graph."""

import csv
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from credits.models import Organization
from tests.factories import PersonFactory, graph_row, load_test_deck
from usage import exports, imports, report
from usage.ingest import EXPORT_COLUMNS, parse_row
from usage.models import CallRecord, ImportJob
from usage.services import calls_ingest

from .conftest import licensed, run_command

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, tzinfo=UTC)
DAY = date(2026, 11, 2)
# The Graph page of graph-pstn-call-log-row.md, as a French tenant receives it: Microsoft
# masks the last 4 digits of the other party's number (domain/number-masking.csv).
FRENCH_ROWS = [
    {"id": "2d8c4f4e-8d3b-4c47-9a31-5f0c1b6b7a01", "callId": "1835317186_112562680@61.221.3.176",
     "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27",
     "userPrincipalName": "camille.dubois@contoso.fr", "userDisplayName": "Camille Dubois",
     "startDateTime": "2026-11-02T09:00:08.2589935Z",
     "endDateTime": "2026-11-02T09:03:47.2589935Z", "duration": 219, "charge": 0.0,
     "callType": "user_out", "currency": "EUR", "calleeNumber": "+33 6 12 34 ****",
     "usageCountryCode": "FR", "tenantCountryCode": "FR", "connectionCharge": 0.0,
     "callerNumber": "+33155550100", "destinationContext": "Domestic",
     "destinationName": "France", "conferenceId": None, "licenseCapability": "MCOPSTNPP",
     "inventoryType": "Subscriber", "operator": "Microsoft", "callDurationSource": "microsoft",
     "otherPartyCountryCode": "FR"},
    {"id": "2d8c4f4e-8d3b-4c47-9a31-5f0c1b6b7a02", "callId": "1835317187_112562681@61.221.3.176",
     "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27",
     "userPrincipalName": "camille.dubois@contoso.fr", "userDisplayName": "Camille Dubois",
     "startDateTime": "2026-11-02T10:00:00Z", "endDateTime": "2026-11-02T10:01:00Z",
     "duration": 60, "charge": 0.0, "callType": "user_out", "currency": "EUR",
     "calleeNumber": "+33 9 ** ** ** **", "usageCountryCode": "FR", "tenantCountryCode": "FR",
     "connectionCharge": 0.0, "callerNumber": "+33155550100", "destinationContext": None,
     "destinationName": None, "conferenceId": None, "licenseCapability": "",
     "inventoryType": "Subscriber", "operator": "Microsoft", "callDurationSource": "operator"},
]


@pytest.fixture
def fr_org(db):
    org = Organization.objects.create(name="Contoso FR", slug="contoso-fr", country="FR",
                                      currency="EUR", billing_region="FR")
    load_test_deck(org, _eur_deck())
    camille = PersonFactory(organization=org, display_name="Camille Dubois",
                            upn="camille.dubois@contoso.fr", usage_location="FR")
    licensed(camille, "MCOEV", "MCOPSTN_PAYG_1", "MCOPSTNC")
    return org


def _eur_deck():
    from tests.factories import TEST_DECK_CSV
    return TEST_DECK_CSV.replace(",USD,", ",EUR,")


# --- 1. masked numbers ------------------------------------------------------------------------


def test_a_french_tenants_masked_rows_are_rated_or_left_for_review(fr_org, make_person, client):
    result = calls_ingest(organization=fr_org, rows=FRENCH_ROWS, source="api", now=NOW)
    assert (result.accepted, result.rejected, result.unrated) == (2, [], 1)
    mobile, premium = (CallRecord.objects.get(graph_id=r["id"]) for r in FRENCH_ROWS)
    # "+33 6 12 34 ****": every prefix of the deck under 3361234 is decided: France - Mobile.
    assert (mobile.rated, mobile.rate_prefix, mobile.charged_to, mobile.charge) == (
        True, "336", "credits", Decimal("0.46"))  # 240 s at 0.114
    # "+33 9 ...": 3395 (premium) may hide under the mask: not rated, kept for review.
    assert (premium.rated, premium.unrated_reason, premium.charge) == (
        False, "ambiguous_masked_number", Decimal("0.00"))
    assert (premium.destination_context, premium.destination_name) == ("Domestic", "France")
    admin = make_person("billing_administrator", organization=fr_org)
    client.force_login(admin.user)
    page = client.get(reverse("reports_pstn_import"), HTTP_ACCEPT_LANGUAGE="en")
    assert "could change the matching rate" in page.content.decode()
    assert "+33 9 ** ** ** **" in page.content.decode()


# --- 3. tolerant headers, strict fields ---------------------------------------------------------


def _csv(header: list[str], rows: list[list[str]], bom=True) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def _export_cells(row: dict) -> list[str]:
    return ["" if row.get(f) is None else str(row.get(f)) for _c, f in EXPORT_COLUMNS]


def test_a_file_with_extra_columns_and_loose_header_imports_with_one_warning(tmp_path, org):
    load_test_deck(org)
    # Microsoft's columns in another case, with spaces, a BOM, one moved to the end, and
    # two columns this system does not know (one in the middle).
    names = [c for c, _f in EXPORT_COLUMNS]
    header = [f"  {n.upper()} " for n in names]
    header.insert(5, "Shared Correlation ID")
    header.append("Region")
    rows = []
    for i in range(3):
        cells = _export_cells(graph_row(f"x{i}", charge="0.25", connectionCharge="0.00"))
        cells.insert(5, f"shared-{i}")
        cells.append("EMEA")
        rows.append(cells)
    path = tmp_path / "PSTN.calls.2026-11-02.csv"
    path.write_bytes(_csv(header, rows))
    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 0, (out, err)
    assert "imported 3, duplicates 0, rejected 0" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: ignored unknown columns: Shared Correlation ID, Region"]
    stored = CallRecord.objects.get(organization=org, graph_id="x1")
    assert (stored.upn, stored.reported_charge, stored.callee_number) == (
        "", Decimal("0.25000"), "+12125550100")


def test_the_upload_job_keeps_the_warning(tmp_path, org, settings, make_person, client):
    settings.IMPORT_DIR = tmp_path / "imports"
    header = [c for c, _f in EXPORT_COLUMNS] + ["Region"]
    path = tmp_path / "calls.csv"
    path.write_bytes(_csv(header, [_export_cells(graph_row("w1")) + ["EMEA"]], bom=False))
    totals = imports.calls_import_file(organization=org, path=path, source="upload",
                                       actor=None)
    assert totals.warnings == ["ignored unknown columns: Region"]
    job = ImportJob.objects.create(organization=org, file_name="calls.csv", file_size=1,
                                   file_path="1/x.upload")
    (settings.IMPORT_DIR / "1").mkdir(parents=True)
    (settings.IMPORT_DIR / "1" / "x.upload").write_bytes(path.read_bytes())
    job = imports.import_job_run(job_id=job.pk)
    assert job.warnings == ["ignored unknown columns: Region"]
    client.force_login(make_person("billing_administrator").user)
    page = client.get(reverse("reports_pstn_import"), {"job": job.pk},
                      HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Lu mais non importé" in page and "ignored unknown columns: Region" in page


def test_a_missing_microsoft_column_still_refuses_the_file(tmp_path, org):
    header = [c for c, _f in EXPORT_COLUMNS if c != "Start Time"]
    path = tmp_path / "calls.csv"
    path.write_bytes(_csv(header, []))
    code, _out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 2 and "missing: Start Time" in err


def test_field_limits_follow_microsofts_documented_types():
    caller = "+" + "1" * 127  # Caller ID is nvarchar(128)
    row, errors = parse_row(graph_row("l1", callerNumber=caller), NOW)
    assert errors == {} and row.caller == caller
    _row, errors = parse_row(graph_row("l2", callerNumber=caller + "1"), NOW)
    assert errors == {"callerNumber": "at most 128 characters"}
    _row, errors = parse_row(graph_row("l3", calleeNumber="+" + "3" * 32), NOW)
    assert errors == {"calleeNumber": "at most 32 characters"}  # nvarchar(32)
    _row, errors = parse_row(graph_row("l4", destinationName="x" * 65), NOW)
    assert errors == {"destinationName": "at most 64 characters"}  # nvarchar(64)


def test_call_duration_source_is_graphs_enum():
    assert parse_row(graph_row("d1", callDurationSource="Operator"), NOW)[0] \
        .call_duration_source == "operator"
    _row, errors = parse_row(graph_row("d2", callDurationSource="carrier"), NOW)
    assert errors == {"callDurationSource": "expected microsoft or operator"}


def test_other_party_country_is_kept_and_shown_as_from_country_or_region(
        org, make_person, client):
    load_test_deck(org)
    calls_ingest(organization=org, rows=[graph_row("o1", otherPartyCountryCode="fr",
                                                   startDateTime=f"{DAY}T09:00:00Z")],
                 source="api", now=NOW)
    assert CallRecord.objects.get(graph_id="o1").other_party_country == "FR"
    _row, errors = parse_row(graph_row("o2", otherPartyCountryCode="FRA"), NOW)
    assert errors == {"otherPartyCountryCode": "expected 2 letters"}
    admin = make_person("global_administrator")
    client.force_login(admin.user)
    client.post(reverse("reports_pstn_usage_columns"), {"columns": ["start", "from_country"]})
    page = client.get(reverse("reports_pstn_usage"), {"range": "custom", "from": "2026-11-01",
                                                     "to": "2026-11-03"},
                      HTTP_ACCEPT_LANGUAGE="fr")
    html = page.content.decode()
    assert "Pays ou région d’origine" in html and "France" in html


# --- 6. context filled from the rating ----------------------------------------------------------


def test_rows_without_context_get_the_ratings(org, make_person, client):
    load_test_deck(org)
    rows = [graph_row("c1", calleeNumber="+33123456789", destinationName=None),
            graph_row("c2", calleeNumber="+14165550100", destinationName=None),
            graph_row("c3", calleeNumber="+33123456789", destinationContext="International",
                      destinationName="France (Paris)"),
            graph_row("c4", callType="user_in", destinationName=None),
            graph_row("c5", calleeNumber="+442079460000", destinationName=None)]
    calls_ingest(organization=org, rows=rows, source="api", now=NOW)
    got = {c.graph_id: (c.destination_context, c.destination_name)
           for c in CallRecord.objects.filter(organization=org)}
    assert got == {"c1": ("International", "France"), "c2": ("Domestic", "Canada"),
                   "c3": ("International", "France (Paris)"), "c4": ("", ""),
                   "c5": ("International", "United Kingdom")}
    f = report.ReportFilters(start=DAY, end=DAY, range="custom", context="domestic")
    assert report.report_totals(organization=org, filters=f, match=None).calls == 1
    admin = make_person("global_administrator")
    client.force_login(admin.user)
    page = client.get(reverse("reports_pstn_usage"), {"range": "custom", "from": "2026-11-01",
                                                     "to": "2026-11-03"},
                      HTTP_ACCEPT_LANGUAGE="fr")
    html = page.content.decode()
    # Stored in English, shown in the reader's language; Microsoft's own names as given.
    assert "Royaume-Uni" in html and "United Kingdom" not in html
    assert "Canada" in html and "France (Paris)" in html


# --- 4. the Microsoft-format round trip ---------------------------------------------------------


def _job(org):
    f = report.ReportFilters(start=DAY - timedelta(days=1), end=DAY + timedelta(days=1),
                             range="custom")
    return exports.ExportJob(org, f, datetime(2026, 11, 10, tzinfo=UTC), 7, "test")


STORED = ("graph_id", "call_id", "conference_id", "user_id", "upn", "user_display_name",
          "start_at", "end_at", "duration_s", "call_type", "caller_number", "callee_number",
          "usage_country", "destination_context", "destination_name", "inventory_type",
          "currency", "reported_charge", "reported_connection_charge", "reported_capability",
          "rated", "charged_to", "pool_minutes", "billable_seconds", "rate_prefix",
          "rate_per_minute", "charge", "capability", "destination_country")


def test_export_then_import_is_all_duplicates_with_identical_stored_values(tmp_path, org):
    load_test_deck(org)
    rows = [graph_row("rt1", startDateTime=f"{DAY}T09:00:08.2589935Z",
                      endDateTime=f"{DAY}T09:03:47.2589935Z", duration=219, charge=0.0247,
                      connectionCharge=0.01, currency="EUR", licenseCapability="MCOPSTN2"),
            graph_row("rt2", calleeNumber="+33612345678", destinationName=None,
                      endDateTime=f"{DAY}T09:01:00Z", charge=None, connectionCharge=None,
                      licenseCapability=None, currency=None),
            graph_row("rt3", callType="user_in", endDateTime=f"{DAY}T09:01:00Z",
                      charge="1.50", destinationName=None)]
    calls_ingest(organization=org, rows=rows, source="api", now=NOW)
    before = {c.graph_id: tuple(getattr(c, f) for f in STORED)
              for c in CallRecord.objects.filter(organization=org)}
    path = tmp_path / "Calls.Export.7.zip"
    assert exports.write_csv_zip(path, _job(org)) == 3
    with zipfile.ZipFile(path) as z:
        data = z.read("PSTN.calls.2026-11-10.csv")
    # A BOM first, so that Excel reads the file as UTF-8; the import below skips it.
    assert data.startswith("\ufeff".encode())
    text = data.decode("utf-8-sig")
    exported = {r["UsageId"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    assert (exported["rt1"]["Charge"], exported["rt1"]["Connection Fee"],
            exported["rt1"]["Currency"], exported["rt1"]["Capability"]) == (
        "0.0247", "0.01", "EUR", "MCOPSTN2")
    assert exported["rt1"]["Start Time"] == "2026-11-02T09:00:08.258993Z"
    assert (exported["rt2"]["Charge"], exported["rt2"]["Currency"],
            exported["rt2"]["Capability"]) == ("", "", "")

    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 0 and "imported 0, duplicates 3, rejected 0" in out
    after = {c.graph_id: tuple(getattr(c, f) for f in STORED)
             for c in CallRecord.objects.filter(organization=org)}
    assert after == before

    copy = Organization.objects.create(name="Copy", slug="copy", country="US", currency="USD",
                                       billing_region="US")
    load_test_deck(copy)
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", copy.slug)
    assert code == 0 and "imported 3, duplicates 0, rejected 0" in out
    copied = {c.graph_id: tuple(getattr(c, f) for f in STORED)
              for c in CallRecord.objects.filter(organization=copy)}
    assert copied == before


# --- 7. the API speaks Graph ----------------------------------------------------------------------


def test_the_api_masks_numbers_and_sends_numbers_and_odata_context(fr_org, client):
    from credits.platform.services import Actor
    from usage.services import api_token_create
    token = api_token_create(organization=fr_org, name="t", actor=Actor.system("t"))[1]
    rows = [graph_row("m1", calleeNumber="+33123456789", userPrincipalName="camille.dubois"
                      "@contoso.fr", charge=0.0247, currency="EUR", usageCountryCode="FR"),
            graph_row("m2", callType="user_in", callerNumber="+33612345678",
                      calleeNumber="+33155550100", usageCountryCode="FR")]
    calls_ingest(organization=fr_org, rows=rows, source="api", now=NOW)
    page = client.get("/api/v1/pstn-calls", {"fromDateTime": f"{DAY}T09:00:00Z",
                                             "toDateTime": f"{DAY}T09:00:00Z"},
                      HTTP_AUTHORIZATION=f"Bearer {token}")
    assert page.status_code == 200, page.content
    body = page.json()
    assert body["@odata.context"].endswith(
        "/api/v1/$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)")
    got = {r["id"]: r for r in body["value"]}
    assert (got["m1"]["calleeNumber"], got["m1"]["callerNumber"]) == (
        "+3312345****", "+14255550100")
    assert (got["m2"]["callerNumber"], got["m2"]["calleeNumber"]) == (
        "+3361234****", "+33155550100")
    assert got["m1"]["charge"] == 0.02 and isinstance(got["m1"]["charge"], float)
    assert got["m1"]["reportedCharge"] == 0.0247
    too_long = client.get("/api/v1/pstn-calls", {"fromDateTime": "2026-01-01T00:00:00Z",
                                                 "toDateTime": "2026-04-01T00:00:01Z"},
                          HTTP_AUTHORIZATION=f"Bearer {token}")
    assert too_long.status_code == 400


def test_the_openapi_description_names_the_differences_from_graph(client):
    schema = client.get("/api/v1/openapi.json").json()
    get = schema["paths"]["/api/v1/pstn-calls"]["get"]
    assert "Where this differs from Graph" in get["description"]
    assert "$metadata" in get["description"]


# --- 8. the licenses Microsoft sells --------------------------------------------------------------


def test_the_smaller_domestic_plans_pool_their_minutes_and_say_so(org):
    from credits.products import PRODUCTS, included_minutes
    load_test_deck(org)
    assert {"MCOPSTN5", "MCOPSTN6", "MCOMEETACPEA"} <= set(PRODUCTS)
    assert (included_minutes("MCOPSTN5", "domestic", "US"),
            included_minutes("MCOPSTN6", "domestic", "FR")) == (120, 240)
    small = licensed(PersonFactory(organization=org, upn="small@contoso.example",
                                   usage_location="US"), "MCOEV", "MCOPSTN5", "MCOPSTNC")
    rows = [graph_row("p1", userPrincipalName=small.upn, duration=100 * 60),
            graph_row("p2", userPrincipalName=small.upn, duration=30 * 60,
                      startDateTime=f"{DAY}T10:00:00Z")]
    calls_ingest(organization=org, rows=rows, source="api", now=NOW)
    first, second = (CallRecord.objects.get(graph_id=g) for g in ("p1", "p2"))
    assert (first.charged_to, first.pool_minutes, first.capability) == (
        "plan_pool", 100, "MCOPSTN5")
    # 20 minutes left of the one license's 120; the other 10 are credits at 0.019.
    assert (second.charged_to, second.pool_minutes, second.credit_seconds, second.charge) == (
        "credits", 20, 600, Decimal("0.19"))


def test_pay_per_minute_conferencing_dial_out_is_credits_under_its_own_license(org):
    load_test_deck(org)
    organizer = licensed(PersonFactory(organization=org, upn="ppm@contoso.example",
                                       usage_location="US"), "MCOMEETACPEA", "MCOPSTNC")
    calls_ingest(organization=org, rows=[graph_row(
        "ppm1", callType="conf_out", userPrincipalName=organizer.upn,
        calleeNumber="+33123456789", duration=120)], source="api", now=NOW)
    call = CallRecord.objects.get(graph_id="ppm1")
    assert (call.charged_to, call.pool_minutes, call.capability, call.charge) == (
        "credits", 0, "MCOMEETACPEA", Decimal("0.05"))
