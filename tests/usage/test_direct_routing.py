"""Direct Routing call records (issue 16, item 2): Graph directRoutingLogRow pages,
Microsoft's DirectRouting.calls.<date>.csv export member, the API, the command's summary
per kind. Never charged to credits.

The fixtures are written from Microsoft's documentation, not from this code:
- GRAPH_PAGE is the example response of Graph v1.0 "callRecord: getDirectRoutingCalls"
  (learn.microsoft.com/graph/api/callrecords-callrecord-getdirectroutingcalls), as
  published: a successful call whose failureDateTime is .NET's empty 0001-01-01, a legacy
  call type "ByotIn", numbers masked by Microsoft;
- DR_HEADER is the table "Exported Direct Routing usage report" (columns 0 to 21) of the
  Teams "PSTN usage report" page
  (learn.microsoft.com/microsoftteams/teams-analytics-and-reports/pstn-usage-report), and
  the export zip holds "PSTN.calls.<UTC date>.csv", "DirectRouting.calls.<UTC date>.csv"
  and "parameters.json" as that page says.
"""

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from credits.models import LedgerEntry
from tests.conftest import requires_postgres
from tests.factories import graph_row
from usage.models import CallRecord, DirectRoutingCall, ImportJob

from .conftest import run_command

pytestmark = pytest.mark.django_db

GRAPH_PAGE = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection("
                      "microsoft.graph.callRecords.directRoutingLogRow)",
    "@odata.count": 1000,
    "value": [{
        "id": "9e8bba57-dc14-533a-a7dd-f0da6575eed1",
        "correlationId": "c98e1515-a937-4b81-b8a8-3992afde64e0",
        "userId": "db03c14b-06eb-4189-939b-7cbf3a20ba27",
        "userPrincipalName": "richard.malk@contoso.com",
        "userDisplayName": "Richard Malk",
        "startDateTime": "2019-11-01T00:00:25.105Z",
        "inviteDateTime": "2019-11-01T00:00:21.949Z",
        "failureDateTime": "0001-01-01T00:00:00Z",
        "endDateTime": "2019-11-01T00:00:30.105Z",
        "duration": 5,
        "callType": "ByotIn",
        "successfulCall": True,
        "callerNumber": "+12345678***",
        "calleeNumber": "+01234567***",
        "mediaPathLocation": "USWE",
        "signalingLocation": "EUNO",
        "finalSipCode": 0,
        "callEndSubReason": 540000,
        "finalSipCodePhrase": "BYE",
        "trunkFullyQualifiedDomainName": "tll-audiocodes01.adatum.biz",
        "mediaBypassEnabled": False,
    }],
    "@odata.nextLink": "https://graph.microsoft.com/v1.0/communications/callRecords/"
                       "getDirectRoutingCalls(fromDateTime=2019-11-01,toDateTime=2019-12-01)"
                       "?$skip=1000",
}

# Microsoft's "Exported Direct Routing usage report" columns, in order.
DR_HEADER = [
    "CorrelationId", "AAD ObjectId", "UPN", "Display Name", "User country", "Invite time",
    "Start time", "Failure time", "End time", "Duration (seconds)", "Success",
    "Caller Number", "Callee Number", "Call type", "Azure region for Media",
    "Azure region for Signaling", "Final SIP code", "Final Microsoft subcode",
    "Final SIP Phrase", "SBC FQDN", "Media bypass", "Shared correlation ID",
]

# Two legs as the page describes them: a successful inbound call, then an outbound attempt
# that failed with a SIP 404 (Microsoft subcode 560404), transferred from the first call.
DR_ROWS = [
    ["f45e9a25-9f94-46e7-a457-84f5940efde9", "db03c14b-06eb-4189-939b-7cbf3a20ba27",
     "richard.malk@contoso.com", "Richard Malk", "US", "2026-11-02T09:00:00.120Z",
     "2026-11-02T09:00:02.400Z", "", "2026-11-02T09:05:02.400Z", "302", "Yes",
     "+14255550123", "+12065550100", "dr_in", "USWE", "USWE", "200", "0",
     "OK", "sbc1.contoso.com", "No", "f45e9a25-9f94-46e7-a457-84f5940efde9"],
    ["45a1da7c-9e97-481a-8a05-3fe19a9a77e0", "db03c14b-06eb-4189-939b-7cbf3a20ba27",
     "richard.malk@contoso.com", "Richard Malk", "US", "2026-11-02T09:03:00.000Z",
     "2026-11-02T09:03:04.000Z", "2026-11-02T09:03:04.000Z", "", "4", "No",
     "+12065550100", "+33123456789", "dr_out_user_transfer", "", "EUWE", "404", "560404",
     "Not Found", "sbc2.contoso.com", "Yes", "f45e9a25-9f94-46e7-a457-84f5940efde9"],
]


def dr_csv(rows=DR_ROWS, header=DR_HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


# A PSTN member in Microsoft's 20 columns (domain/pstn-export-columns.csv), by hand.
PSTN_HEADER = [
    "UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
    "User Display Name", "Caller ID", "Call Type", "Number Type", "Domestic/International",
    "Destination Dialed", "Destination Number", "Start Time", "End Time", "Duration Seconds",
    "Connection Fee", "Charge", "Currency", "Capability",
]


def pstn_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(PSTN_HEADER)
    writer.writerow(["0f2c5c4e-3c2b-4b1a-9a57-1d2e3f4a5b6c", "call-1", "", "US", "", "",
                     "", "+14255550100", "user_out", "Subscriber", "Domestic",
                     "United States", "+12125550100", "2026-11-02T10:00:00Z",
                     "2026-11-02T10:01:00Z", "60", "0.00", "0.00", "USD", "MCOPSTNU"])
    return out.getvalue()


def mixed_zip(path, *, extra: dict | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PSTN.calls.2026-11-02.csv", pstn_csv())
        archive.writestr("DirectRouting.calls.2026-11-02.csv", dr_csv())
        archive.writestr("parameters.json", json.dumps({"from": "2026-11-02"}))
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return path


def summary(out: str) -> list[str]:
    return out.splitlines()[:2]


# --- import_pstn_calls --------------------------------------------------------------------


def test_graph_direct_routing_page_is_imported_as_documented(tmp_path, org):
    path = tmp_path / "dr.json"
    path.write_text(json.dumps(GRAPH_PAGE))
    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert (code, summary(out)) == (0, ["PSTN: imported 0, duplicates 0, rejected 0",
                                        "Direct Routing: imported 1, duplicates 0, "
                                        "rejected 0"]), (out, err)
    call = DirectRoutingCall.objects.get(organization=org)
    assert call.graph_id == "9e8bba57-dc14-533a-a7dd-f0da6575eed1"
    assert call.start_at == datetime(2019, 11, 1, 0, 0, 25, 105000, tzinfo=UTC)
    assert call.invite_at == datetime(2019, 11, 1, 0, 0, 21, 949000, tzinfo=UTC)
    assert call.failure_at is None  # Graph's 0001-01-01 is "no failure"
    assert call.successful is True and call.duration_s == 5
    assert (call.final_sip_code, call.final_subcode, call.final_sip_phrase) == (0, 540000,
                                                                               "BYE")
    assert (call.sbc_fqdn, call.media_region, call.signaling_region, call.media_bypass) == (
        "tll-audiocodes01.adatum.biz", "USWE", "EUNO", False)
    assert (call.caller_number, call.callee_number) == ("+12345678***", "+01234567***")
    assert not CallRecord.objects.filter(organization=org).exists()
    assert not LedgerEntry.objects.filter(account__organization=org).exists()
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert summary(out)[1] == "Direct Routing: imported 0, duplicates 1, rejected 0"


def test_mixed_zip_imports_both_kinds_and_reports_unknown_members(tmp_path, org):
    path = mixed_zip(tmp_path / "Calls.Export.1.zip", extra={"notes.txt": "hello"})
    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert (code, summary(out)) == (0, ["PSTN: imported 1, duplicates 0, rejected 0",
                                        "Direct Routing: imported 2, duplicates 0, "
                                        "rejected 0"]), (out, err)
    assert "notes.txt: skipped" in err and "parameters.json" not in err
    failed = DirectRoutingCall.objects.get(organization=org, successful=False)
    assert (failed.final_sip_code, failed.final_subcode, failed.sbc_fqdn) == (
        404, 560404, "sbc2.contoso.com")
    assert failed.failure_at == datetime(2026, 11, 2, 9, 3, 4, tzinfo=UTC)
    assert failed.media_bypass is True and failed.user_country == "US"
    assert failed.shared_correlation_id == "f45e9a25-9f94-46e7-a457-84f5940efde9"
    assert CallRecord.objects.filter(organization=org).count() == 1
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert summary(out) == ["PSTN: imported 0, duplicates 1, rejected 0",
                            "Direct Routing: imported 0, duplicates 2, rejected 0"]


def test_a_zip_of_unknown_members_only_is_refused(tmp_path, org):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("calls.csv", pstn_csv())
    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 2 and "DirectRouting.calls" in err and out == ""


def test_direct_routing_csv_alone_with_loose_header_and_extra_column(tmp_path, org):
    header = [f" {h.upper()} " for h in DR_HEADER] + ["Tenant note"]
    rows = [r + ["x"] for r in DR_ROWS]
    path = tmp_path / "DirectRouting.calls.2026-11-02.csv"
    path.write_text("\ufeff" + dr_csv(rows, header), encoding="utf-8")
    code, out, err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert (code, summary(out)[1]) == (0, "Direct Routing: imported 2, duplicates 0, "
                                          "rejected 0"), (out, err)


def test_bad_direct_routing_rows_are_rejected_naming_the_field(tmp_path, org):
    bad = [list(DR_ROWS[0]), list(DR_ROWS[1]), list(DR_ROWS[0])]
    bad[0][16] = "abc"  # Final SIP code
    bad[1][10] = "Maybe"  # Success
    bad[2][6] = bad[2][5] = ""  # no start nor invite time
    bad.append(DR_ROWS[1])
    path = tmp_path / "Calls.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DirectRouting.calls.2026-11-02.csv", dr_csv(bad))
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert code == 1
    assert summary(out)[1] == "Direct Routing: imported 1, duplicates 0, rejected 3"
    assert "Direct Routing row 1 (id f45e9a25-9f94-46e7-a457-84f5940efde9): finalSipCode:" \
        in out
    assert "Direct Routing row 2 (id 45a1da7c-9e97-481a-8a05-3fe19a9a77e0): successfulCall:" \
        in out
    assert "Direct Routing row 3 " in out and "startDateTime: required" in out


def test_pstn_graph_page_still_goes_to_calls(tmp_path, org):
    page = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection("
                              "microsoft.graph.callRecords.pstnCallLogRow)",
            "value": [graph_row("p1")]}
    path = tmp_path / "pstn.json"
    path.write_text(json.dumps(page))
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert summary(out) == ["PSTN: imported 1, duplicates 0, rejected 0",
                            "Direct Routing: imported 0, duplicates 0, rejected 0"]


def test_a_list_mixing_both_kinds_is_told_apart_by_fields(tmp_path, org):
    rows = [graph_row("p1"), GRAPH_PAGE["value"][0]]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(rows))
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert summary(out) == ["PSTN: imported 1, duplicates 0, rejected 0",
                            "Direct Routing: imported 1, duplicates 0, rejected 0"]


def test_csv_and_graph_copies_of_one_leg_are_one_row(tmp_path, org):
    row = GRAPH_PAGE["value"][0]
    csv_row = [row["correlationId"], row["userId"], row["userPrincipalName"],
               row["userDisplayName"], "", row["inviteDateTime"], row["startDateTime"], "",
               row["endDateTime"], "5", "Yes", "+12345678***", "+01234567***",
               row["callType"], "USWE", "EUNO", "0", "540000", "BYE",
               row["trunkFullyQualifiedDomainName"], "No", ""]
    path = tmp_path / "DirectRouting.calls.2019-11-01.csv"
    path.write_text(dr_csv([csv_row]))
    assert summary(run_command("import_pstn_calls", str(path), "--org", org.slug)[1])[1] \
        == "Direct Routing: imported 1, duplicates 0, rejected 0"
    page = tmp_path / "page.json"
    page.write_text(json.dumps(GRAPH_PAGE))
    assert summary(run_command("import_pstn_calls", str(page), "--org", org.slug)[1])[1] \
        == "Direct Routing: imported 0, duplicates 1, rejected 0"


# --- the upload page's job ----------------------------------------------------------------


def test_upload_job_counts_both_kinds(tmp_path, org, settings, admin_person):
    from credits.platform.services import Actor
    from usage.imports import import_job_run, import_job_start

    settings.IMPORT_DIR = tmp_path / "imports"

    class Upload:
        name = "Calls.Export.7.zip"

        def __init__(self, data):
            self.data = data

        def chunks(self, size):
            yield self.data

    data = mixed_zip(tmp_path / "x.zip", extra={"readme.md": "x"}).read_bytes()
    job = import_job_start(organization=org, requester=admin_person, upload=Upload(data),
                           actor=Actor.system("test"))
    job = import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.accepted, job.dr_accepted, job.dr_duplicates, job.dr_rejected_count) == (
        1, 2, 0, 0)
    assert any("readme.md" in w for w in job.warnings)
    assert ImportJob.objects.get(pk=job.pk).status == "done"


# --- the API ------------------------------------------------------------------------------


def test_api_post_accepts_counts_duplicates_and_names_bad_fields(api, org):
    good = GRAPH_PAGE["value"][0]
    bad = {**good, "id": "b1", "finalSipCode": "four hundred", "successfulCall": "perhaps"}
    response = api.post("/direct-routing-calls", {"value": [good, bad, good]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert body["rejected"] == [{"index": 1, "id": "b1", "errors": {
        "finalSipCode": "expected a SIP response code",
        "successfulCall": "expected true or false (Yes or No)"}}]
    assert DirectRoutingCall.objects.filter(organization=org).count() == 1
    assert not LedgerEntry.objects.filter(account__organization=org).exists()


def test_api_post_refuses_more_than_1000_rows(api):
    response = api.post("/direct-routing-calls", {"value": [{}] * 1001})
    assert response.status_code == 422


def test_api_get_pages_graph_style_within_90_days(api, org, monkeypatch):
    from usage import direct_routing_api

    rows = [{**GRAPH_PAGE["value"][0], "id": f"id-{n}",
             "startDateTime": f"2026-11-02T09:00:0{n}Z",
             "inviteDateTime": None, "endDateTime": None} for n in range(3)]
    assert api.post("/direct-routing-calls", {"value": rows}).json()["accepted"] == 3
    monkeypatch.setattr(direct_routing_api.api_calls, "PAGE_SIZE", 2)
    params = {"fromDateTime": "2026-11-02T09:00:00Z", "toDateTime": "2026-11-02T09:00:02Z"}
    first = api.get("/direct-routing-calls", params).json()
    assert first["@odata.context"].endswith("directRoutingLogRow)")
    assert [r["id"] for r in first["value"]] == ["id-0", "id-1"]
    assert first["value"][0]["trunkFullyQualifiedDomainName"] == "tll-audiocodes01.adatum.biz"
    assert first["value"][0]["finalSipCode"] == 0 and first["value"][0]["failureDateTime"] \
        is None
    query = parse_qs(urlsplit(first["@odata.nextLink"]).query)
    second = api.get("/direct-routing-calls", {k: v[0] for k, v in query.items()}).json()
    assert [r["id"] for r in second["value"]] == ["id-2"]
    assert second.get("@odata.nextLink") is None
    too_long = api.get("/direct-routing-calls", {"fromDateTime": "2026-01-01T00:00:00Z",
                                                 "toDateTime": "2026-06-01T00:00:00Z"})
    assert too_long.status_code == 400 and "90 days" in too_long.json()["detail"]


def test_api_needs_the_organization_token(client):
    response = client.get("/api/v1/direct-routing-calls",
                          {"fromDateTime": "2026-11-01T00:00:00Z",
                           "toDateTime": "2026-11-02T00:00:00Z"})
    assert response.status_code == 401


# --- the report's Direct Routing tab ------------------------------------------------------

DR_URL = "/reports/pstn-usage/direct-routing/"


def recent_rows():
    """The two documented legs, moved to yesterday so the default 28 days show them."""
    iso = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    rows = []
    for row in DR_ROWS:
        row = [c.replace("2026-11-02", iso) for c in row]
        rows.append(row)
    third = list(DR_ROWS[1])
    third = [c.replace("2026-11-02", iso) for c in third]
    third[0] = "11111111-2222-3333-4444-555555555555"
    third[2], third[3] = "ana@contoso.com", "Ana Lopez"
    third[16], third[17], third[18] = "486", "560486", "Busy Here"
    rows.append(third)
    return rows


@pytest.fixture
def dr_calls(tmp_path, org):
    path = tmp_path / "DirectRouting.calls.csv"
    path.write_text(dr_csv(recent_rows()))
    assert run_command("import_pstn_calls", str(path), "--org", org.slug)[0] == 0
    return DirectRoutingCall.objects.filter(organization=org)


def test_direct_routing_tab_shows_counts_failures_by_code_and_rows(client_for, make_person,
                                                                   dr_calls):
    admin = make_person("billing_administrator")
    html = client_for(admin).get(DR_URL).content.decode()
    assert 'data-tile="dr-calls">3<' in html
    assert 'data-tile="dr-succeeded">1<' in html and 'data-tile="dr-failed">2<' in html
    table = html.split('id="dr-failures-by-code"', 1)[1].split("</table>", 1)[0]
    assert "<td>404</td><td>Not Found</td>" in table and "<td>486</td><td>Busy Here</td>" \
        in table
    assert html.count("<tr") >= 3 and "sbc2.contoso.com" in html and "560404" in html
    assert 'href="/reports/pstn-usage/"' in html and "Calling Plans" in html
    calling_plans = client_for(admin).get("/reports/pstn-usage/").content.decode()
    assert f'href="{DR_URL}"' in calling_plans and 'aria-current="page">Calling Plans' \
        in calling_plans


def test_direct_routing_tab_filters_by_sbc_success_and_user(client_for, make_person,
                                                            dr_calls):
    client = client_for(make_person("teams_communications_administrator"))
    by_sbc = client.get(DR_URL, {"sbc": "sbc1.contoso.com"}).content.decode()
    assert 'data-tile="dr-calls">1<' in by_sbc
    failed = client.get(DR_URL, {"success": "failure"}).content.decode()
    assert 'data-tile="dr-calls">2<' in failed and 'data-tile="dr-succeeded">0<' in failed
    by_user = client.get(DR_URL, {"user": "ana@"}).content.decode()
    assert 'data-tile="dr-calls">1<' in by_user and "Busy Here" in by_user
    bad = client.get(DR_URL, {"success": "sometimes"})
    assert bad.status_code == 200 and 'data-tile="dr-calls">3<' in bad.content.decode()


def test_direct_routing_tab_in_french_and_for_a_reader_without_rows(client_for, make_person,
                                                                    dr_calls):
    html = client_for(make_person("billing_administrator")).get(
        DR_URL, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Routage direct" in html and "Échecs par code SIP" in html
    assert "Appels ayant échoué" in html and "Forfaits d'appels" in html
    reader = client_for(make_person("global_reader")).get(DR_URL).content.decode()
    assert 'data-tile="dr-calls">3<' in reader and "sbc2.contoso.com</td><td>" not in reader
    assert "560404" not in reader


def test_direct_routing_tab_masks_external_numbers_in_masking_countries(client_for,
                                                                        make_person,
                                                                        dr_calls, org):
    org.country = "FR"
    org.save(update_fields=["country"])
    html = client_for(make_person("billing_administrator")).get(DR_URL).content.decode()
    # dr_in: the caller is the outside party; dr_out_user_transfer: the callee.
    assert "+1425555****" in html and "+12065550100" in html
    assert "+3312345****" in html and "+33123456789" not in html


# --- exports ------------------------------------------------------------------------------


def export_job(org, direct_routing=True):
    from usage import exports, report

    day = datetime.now(UTC).date()
    filters = report.ReportFilters(start=day - timedelta(days=10), end=day, range="custom")
    return exports.ExportJob(org, filters, datetime.now(UTC), 7, "test",
                             direct_routing=direct_routing)


def test_csv_zip_carries_direct_routing_in_microsofts_columns_and_reads_back(tmp_path, org,
                                                                           dr_calls):
    from usage import exports

    path = tmp_path / "Calls.Export.7.zip"
    exports.write_csv_zip(path, export_job(org))
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        member = next(n for n in names if n.startswith("DirectRouting.calls."))
        raw = archive.read(member).decode()
        params = json.loads(archive.read("parameters.json"))
    assert member == f"DirectRouting.calls.{datetime.now(UTC).date().isoformat()}.csv"
    assert any(n.startswith("PSTN.calls.") for n in names)
    assert raw.startswith(",".join(DR_HEADER) + "\r\n")
    records = list(csv.reader(io.StringIO(raw)))
    assert len(records) == 4 and params["directRoutingRows"] == 3
    failed = next(r for r in records if r[16] == "404")
    assert failed[10] == "No" and failed[17] == "560404" and failed[19] == "sbc2.contoso.com"
    assert failed[20] == "Yes"
    code, out, _err = run_command("import_pstn_calls", str(path), "--org", org.slug)
    assert summary(out) == ["PSTN: imported 0, duplicates 0, rejected 0",
                            "Direct Routing: imported 0, duplicates 3, rejected 0"]
    # Into an empty organization: the same stored values.
    from credits.models import Organization

    copy = Organization.objects.create(name="Copy", slug="copy-dr", country="US",
                                       currency="USD", billing_region="US")
    run_command("import_pstn_calls", str(path), "--org", copy.slug)
    fields = ("leg_key", "correlation_id", "upn", "start_at", "invite_at", "failure_at",
              "end_at", "duration_s", "successful", "final_sip_code", "final_subcode",
              "final_sip_phrase", "sbc_fqdn", "media_bypass", "caller_number",
              "callee_number", "shared_correlation_id", "user_country")
    original = sorted(dr_calls.values_list(*fields))
    copied = sorted(DirectRoutingCall.objects.filter(organization=copy).values_list(*fields))
    assert copied == original


def test_exports_leave_direct_routing_out_unless_asked(tmp_path, org, dr_calls):
    from usage import exports

    path = tmp_path / "plain.zip"
    exports.write_csv_zip(path, export_job(org, direct_routing=False))
    assert not any(n.startswith("DirectRouting") for n in zipfile.ZipFile(path).namelist())


def test_xlsx_has_a_direct_routing_sheet(tmp_path, org, dr_calls):
    import openpyxl

    from usage import exports

    path = tmp_path / "usage.xlsx"
    exports.write_xlsx(path, export_job(org))
    book = openpyxl.load_workbook(path)
    sheet = book["DirectRouting"]
    header = [c.value for c in sheet[1]]
    assert header[:22] == DR_HEADER
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 3
    failed = next(r for r in rows if r[16] == 404)
    assert failed[17] == 560404 and isinstance(failed[6], datetime)
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref


def test_export_request_keeps_the_direct_routing_option(client_for, make_person, org,
                                                        dr_calls):
    from usage.models import Export

    client = client_for(make_person("billing_administrator"))
    client.post("/reports/pstn-usage/export/", {"format": "csv-zip", "range": "28",
                                                "direct_routing": "1"})
    client.post("/reports/pstn-usage/export/", {"format": "xlsx", "range": "28"})
    assert sorted(Export.objects.filter(organization=org).values_list(
        "format", "include_direct_routing")) == [("csv-zip", True), ("xlsx", False)]


def test_export_command_takes_direct_routing(tmp_path, org, dr_calls):
    path = tmp_path / "out.zip"
    day = datetime.now(UTC).date().isoformat()
    code, out, _err = run_command("export_pstn_usage", "--org", org.slug, "--from",
                                  "2026-11-01", "--to", day, "--format", "csv-zip", "-o",
                                  str(path), "--direct-routing")
    assert code == 0, out
    assert any(n.startswith("DirectRouting.calls.") for n in zipfile.ZipFile(path).namelist())


# --- the demo -----------------------------------------------------------------------------


def test_demo_step_adds_direct_routing_calls_with_failures_once(org):
    from credits.management.commands.seed_demo import STEPS
    from tests.factories import PersonFactory
    from usage import demo_direct_routing

    assert "usage.demo_direct_routing" in STEPS  # seed_demo runs it, after usage.demo
    for name in ("ana", "ben", "chloe"):
        PersonFactory(organization=org, upn=f"{name}@contoso.com", display_name=name.title())
    out = io.StringIO()
    demo_direct_routing.seed(org, out)
    calls = DirectRoutingCall.objects.filter(organization=org)
    assert calls.count() > 100 and out.getvalue().startswith(
        f"direct routing: imported {calls.count()}, duplicates 0, rejected 0")
    assert set(calls.values_list("sbc_fqdn", flat=True)) == {"sbc1.contoso.com",
                                                             "sbc2.contoso.com"}
    failed = calls.filter(successful=False)
    assert failed.exists() and not failed.filter(final_sip_code__lt=400).exists()
    assert {404, 486} <= set(failed.values_list("final_sip_code", flat=True))
    assert calls.filter(start_at__gte=datetime.now(UTC) - timedelta(days=28)).exists()
    assert not LedgerEntry.objects.filter(account__organization=org).exists()
    before = calls.count()
    demo_direct_routing.seed(org, io.StringIO())
    assert calls.count() == before


# --- concurrency (PostgreSQL) -------------------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_each_leg_once(org):
    import threading

    from django.db import connections

    from usage.direct_routing_store import direct_routing_ingest

    base = GRAPH_PAGE["value"][0]
    rows = [{**base, "id": f"race-{n}", "correlationId": f"corr-{n}",
             "startDateTime": f"2026-11-02T09:{n // 60:02d}:{n % 60:02d}Z",
             "inviteDateTime": None, "endDateTime": None} for n in range(300)]
    # Four workers, each with half the rows, overlapping the others'.
    plans = [rows[i * 50:i * 50 + 150] for i in range(4)]
    barrier = threading.Barrier(len(plans))
    results, errors = [], []

    def work(plan):
        try:
            barrier.wait()
            for start in range(0, len(plan), 50):
                results.append(direct_routing_ingest(organization=org,
                                                     rows=plan[start:start + 50],
                                                     source="api"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    stored = DirectRoutingCall.objects.filter(organization=org).count()
    assert stored == len({r["id"] for p in plans for r in p})
    assert sum(r.accepted for r in results) == stored
    assert sum(r.duplicates for r in results) == sum(len(p) for p in plans) - stored


def test_direct_routing_tab_queries_do_not_grow_with_rows(client_for, make_person, dr_calls,
                                                          django_assert_max_num_queries):
    client = client_for(make_person("billing_administrator"))
    client.get(DR_URL)  # the session and the person, once
    with django_assert_max_num_queries(16):
        response = client.get(DR_URL)
    assert response.status_code == 200
    DirectRoutingCall.objects.bulk_create([
        DirectRoutingCall(**{**{f.attname: getattr(c, f.attname)
                                for f in DirectRoutingCall._meta.concrete_fields
                                if f.attname != "id"},
                             "graph_id": f"copy-{n}-{c.pk}", "leg_key": f"k-{n}-{c.pk}"})
        for n in range(40) for c in dr_calls])
    with django_assert_max_num_queries(16):
        html = client.get(DR_URL).content.decode()
    assert 'data-tile="dr-calls">123<' in html and 'rel="next"' in html
    import html as html_lib
    import re

    first_rows = html.count("<td>Richard Malk</td>") + html.count("<td>Ana Lopez</td>")
    link = html_lib.unescape(re.search(r'href="(\?[^"]*after=[^"]*)" rel="next"', html)[1])
    second = client.get(DR_URL + link).content.decode()
    assert first_rows == 50 and second.count("<tr") > 50 and "First page" in second


def test_direct_routing_rows_name_the_call_type_beside_microsofts_code(client_for, make_person,
                                                                      dr_calls):
    client = client_for(make_person("billing_administrator"))
    html = client.get(DR_URL).content.decode()
    assert "<td>Inbound call (dr_in)</td>" in html
    assert "<td>Outbound: transferred (dr_out_user_transfer)</td>" in html
    french = client.get(DR_URL, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "<td>Appel entrant (dr_in)</td>" in french
