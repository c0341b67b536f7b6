"""Exports: the workbook read back with openpyxl, the zip with the csv module, the
Downloads page, the background task, expiry and access."""

import csv
import io
import json
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from credits.models import DomainEvent, Organization
from tests.conftest import requires_postgres
from tests.factories import PersonFactory, call_record
from usage import exports, report
from usage.models import CallRecord, Export, ExportStatus
from usage.rollups import rollups_add_calls

# domain/pstn-export-columns.csv, in order (written by hand, not imported from the code).
MICROSOFT_COLUMNS = [
    "UsageId", "Call ID", "Conference ID", "User Location", "AAD ObjectId", "UPN",
    "User Display Name", "Caller ID", "Call Type", "Number Type", "Domestic/International",
    "Destination Dialed", "Destination Number", "Start Time", "End Time", "Duration Seconds",
    "Connection Fee", "Charge", "Currency", "Capability",
]
DAY = date(2026, 11, 2)


def at(days=0, hour=9, second=0):
    return datetime(2026, 11, 2, hour, 0, second, tzinfo=UTC) + timedelta(days=days)


def naive(*args):
    """A UTC wall time as Excel (and openpyxl) hold it: without a zone."""
    return datetime(*args, tzinfo=UTC).replace(tzinfo=None)


def store(org, records):
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    return records


def job(org, **filters):
    f = report.ReportFilters(start=DAY - timedelta(days=6), end=DAY + timedelta(days=6),
                             range="custom", **filters)
    return exports.ExportJob(org, f, datetime(2026, 11, 10, 12, 0, tzinfo=UTC), 42, "test")


@pytest.fixture
def alice(org):
    return PersonFactory(organization=org, display_name="Alice Martin",
                         upn="alice@contoso.example")


@pytest.fixture
def calls(org, alice):
    return store(org, [
        call_record(org, person=alice, start=at(0), duration_s=125, charge=Decimal("0.15"),
                    connection_fee=Decimal("0.01500"), rate_per_minute=Decimal("0.04321"),
                    reported_charge=Decimal("0.24700"),
                    reported_connection_charge=Decimal("0.01000"),
                    reported_capability="MCOPSTN2", currency="EUR"),
        call_record(org, person=alice, start=at(1), duration_s=60, charge=Decimal("2.00"),
                    user_display_name="=HYPERLINK(\"http://evil\")", call_type="user_in",
                    caller_number="+33612345678", callee_number="+14255550100"),
        call_record(org, person=None, start=at(2), duration_s=30, charge=Decimal("0.00"),
                    call_type="ucap_in", charged_to="free", destination_context="Domestic",
                    credit_seconds=0, billable_seconds=0, rate_per_minute=None,
                    end_at=None),
        call_record(org, person=alice, start=at(-30), charge=Decimal("5.00")),  # out of range
    ])


# --- Excel ----------------------------------------------------------------------------------


def test_workbook_has_typed_cells_frozen_header_and_filter(tmp_path, org, calls):
    path = tmp_path / "usage.xlsx"
    assert exports.write_xlsx(path, job(org)) == 3
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Usage", "Parameters"]
    ws = wb["Usage"]
    header = [c.value for c in ws[1]]
    assert header == MICROSOFT_COLUMNS + ["Rated charge", "Charged to", "Rate",
                                          "Billable minutes", "Pool minutes",
                                          "From country or region"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:Z4"
    first = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert first["Start Time"].value == naive(2026, 11, 2, 9, 0)
    assert first["Start Time"].is_date
    assert first["End Time"].value == naive(2026, 11, 2, 9, 2, 5)
    assert first["Duration Seconds"].value == 125 and first["Duration Seconds"].data_type == "n"
    # Microsoft's columns hold Microsoft's values; the rating has its own columns.
    assert first["Charge"].value == pytest.approx(0.247)
    assert first["Connection Fee"].value == pytest.approx(0.01)
    assert (first["Currency"].value, first["Capability"].value) == ("EUR", "MCOPSTN2")
    assert first["Rated charge"].value == pytest.approx(0.15)
    assert "$" in first["Rated charge"].number_format
    assert first["Charged to"].value == "credits"
    assert first["Rate"].value == pytest.approx(0.04321)
    assert first["Billable minutes"].value == pytest.approx(125 / 60)
    assert first["UsageId"].value == calls[0].graph_id
    # A call without an end time: start + duration.
    third = {h: c.value for h, c in zip(header, ws[4], strict=True)}
    assert third["End Time"] == naive(2026, 11, 4, 9, 0, 30)
    assert third["Rate"] is None
    # Nothing reported: Microsoft's columns stay blank, whatever the rating says.
    assert (third["Charge"], third["Connection Fee"], third["Capability"]) == (None, None, None)
    assert third["Rated charge"] == 0


def test_text_that_looks_like_a_formula_stays_text(tmp_path, org, calls):
    path = tmp_path / "usage.xlsx"
    exports.write_xlsx(path, job(org))
    cell = openpyxl.load_workbook(path)["Usage"]["G3"]
    assert cell.value == '=HYPERLINK("http://evil")' and cell.data_type == "s"
    raw = zipfile.ZipFile(path).read("xl/worksheets/sheet2.xml").decode()
    assert "<f>" not in raw


def test_summary_sums_equal_the_report_tiles_and_has_a_chart(tmp_path, org, calls):
    path = tmp_path / "usage.xlsx"
    j = job(org)
    exports.write_xlsx(path, j)
    wb = openpyxl.load_workbook(path)
    ws = wb["Summary"]
    values = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, 8)}
    tiles = report.report_totals(organization=org, filters=j.filters, match=None)
    assert values["Calls"] == tiles.calls == 3
    assert Decimal(str(values["Minutes"])) == tiles.minutes == Decimal("3.6")
    assert Decimal(str(values["Credits spent"])) == tiles.charge == Decimal("2.15")
    labels = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    assert "By call type" in labels and "Spend per day" in labels and "By user" in labels
    assert "alice@contoso.example" in labels
    day_row = labels.index("Spend per day") + 3
    assert ws.cell(day_row, 1).value == naive(2026, 11, 2)
    assert ws.cell(day_row, 4).value == pytest.approx(0.15)
    assert len(ws._charts) == 1
    assert any(n.startswith("xl/charts/chart") for n in zipfile.ZipFile(path).namelist())


def test_parameters_sheet_names_range_filters_time_zone_and_time(tmp_path, org, calls):
    path = tmp_path / "usage.xlsx"
    exports.write_xlsx(path, job(org, context="domestic", charged_to="free"))
    ws = openpyxl.load_workbook(path)["Parameters"]
    params = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    assert params["From (UTC)"] == "2026-10-27" and params["To (UTC)"] == "2026-11-08"
    assert params["Filter: context"] == "domestic"
    assert params["Filter: charged_to"] == "free"
    assert params["Time zone"] == "UTC"
    assert params["Generated at"] == naive(2026, 11, 10, 12, 0)
    assert params["Rows"] == 1


def test_more_rows_than_a_sheet_holds_continue_on_more_sheets(tmp_path, org, alice):
    store(org, [call_record(org, person=alice, start=at(0, 8, i)) for i in range(7)])
    path = tmp_path / "usage.xlsx"
    assert exports.write_xlsx(path, job(org), rows_per_sheet=4) == 7
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Usage", "Usage 2", "Usage 3", "Parameters"]
    counts = [wb[n].max_row - 1 for n in ("Usage", "Usage 2", "Usage 3")]
    assert counts == [3, 3, 1]
    assert wb["Usage 2"]["A1"].value == "UsageId" and wb["Usage 3"].freeze_panes == "A2"
    starts = [wb[n].cell(r, 14).value for n in ("Usage", "Usage 2", "Usage 3")
              for r in range(2, wb[n].max_row + 1)]
    assert starts == sorted(starts) and len(starts) == 7


def test_workbook_masks_external_numbers_for_a_masked_country(tmp_path, make_person):
    fr = Organization.objects.create(name="Fab", slug="fab-x", country="FR", currency="EUR",
                                     billing_region="FR")
    store(fr, [call_record(fr, start=at(0), callee_number="+33123456789",
                           caller_number="+33999999999")])
    path = tmp_path / "usage.xlsx"
    exports.write_xlsx(path, job(fr))
    ws = openpyxl.load_workbook(path)["Usage"]
    assert ws["M2"].value == "+3312345****"  # Destination Number
    assert ws["H2"].value == "+33999999999"  # Caller ID: our user's own number
    assert "€" in ws["U2"].number_format  # Rated charge, in the organization's currency


# --- CSV zip --------------------------------------------------------------------------------


def read_zip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        raw = z.read(names[0])
        params = json.loads(z.read("parameters.json"))
    return names, raw, params


def test_csv_zip_holds_microsofts_columns_crlf_and_parameters(tmp_path, org, calls):
    path = tmp_path / "Calls.Export.42.zip"
    assert exports.write_csv_zip(path, job(org)) == 3
    names, raw, params = read_zip(path)
    assert names == ["PSTN.calls.2026-11-10.csv", "parameters.json"]
    assert raw.count(b"\r\n") == 4 and raw.count(b"\n") == 4
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == MICROSOFT_COLUMNS
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Start Time"] == "2026-11-02T09:00:00Z"
    assert first["End Time"] == "2026-11-02T09:02:05Z"
    # Microsoft's reported values, never this system's rating (0.15 credits, MCOPSTNPP).
    assert (first["Duration Seconds"], first["Charge"], first["Connection Fee"]) == (
        "125", "0.247", "0.01")
    assert (first["Currency"], first["Capability"]) == ("EUR", "MCOPSTN2")
    assert first["Domestic/International"] == "International"
    third = dict(zip(rows[0], rows[3], strict=True))
    assert (third["Charge"], third["Connection Fee"], third["Capability"]) == ("", "", "")
    assert rows[2][6] == '=HYPERLINK("http://evil")'
    assert rows[3][14] == "2026-11-04T09:00:30Z"
    assert params["rows"] == 3 and params["timeZone"] == "UTC"
    assert (params["from"], params["to"], params["exportId"]) == ("2026-10-27", "2026-11-08",
                                                                   42)


def test_csv_zip_respects_filters_and_masking(tmp_path, db):
    fr = Organization.objects.create(name="Fab", slug="fab-y", country="FR", currency="EUR",
                                     billing_region="FR")
    store(fr, [
        call_record(fr, start=at(0), callee_number="+33123456789"),
        call_record(fr, start=at(0, 10), call_type="user_in", caller_number="+33611112222",
                    callee_number="+33100000000", destination_context="Domestic"),
    ])
    path = tmp_path / "x.zip"
    exports.write_csv_zip(path, job(fr, context="domestic"))
    _names, raw, params = read_zip(path)
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) == 1 and params["filters"] == {"context": "domestic"}
    assert rows[0]["Caller ID"] == "+3361111****"
    assert rows[0]["Destination Number"] == "+33100000000"
    assert params["maskedDigits"] == 4


def test_the_zip_reads_back_through_import_as_duplicates_only(tmp_path, org, calls, capsys):
    path = tmp_path / "Calls.Export.42.zip"
    exports.write_csv_zip(path, job(org))
    before = CallRecord.objects.count()
    call_command("import_pstn_calls", str(path), "--org", org.slug)
    out = capsys.readouterr().out
    assert "imported 0, duplicates 3, rejected 0" in out
    assert CallRecord.objects.count() == before


def test_the_zip_imports_into_an_empty_organization_with_the_same_values(tmp_path, org,
                                                                         calls):
    path = tmp_path / "Calls.Export.42.zip"
    exports.write_csv_zip(path, job(org))
    other = Organization.objects.create(name="Copy", slug="copy-org", country="US",
                                        currency="USD", billing_region="US")
    call_command("import_pstn_calls", str(path), "--org", other.slug)
    copied = {c.graph_id: c for c in CallRecord.objects.filter(organization=other)}
    for original in calls[:3]:
        c = copied[original.graph_id]
        assert c.start_at == original.start_at and c.duration_s == original.duration_s
        assert c.call_type == original.call_type
        assert (c.reported_charge, c.reported_connection_charge, c.currency,
                c.reported_capability) == (
            original.reported_charge, original.reported_connection_charge,
            original.currency, original.reported_capability)


@requires_postgres
def test_postgres_copy_writes_the_same_text_as_python(tmp_path, org, calls):
    assert connection.vendor == "postgresql"
    j = job(org)
    fast = tmp_path / "copy.zip"
    exports.write_csv_zip(fast, j)

    class Member(io.BytesIO):
        pass

    slow = Member()
    exports._csv_python(slow, j, exports._Progress(None))
    assert read_zip(fast)[1] == exports._csv_header() + slow.getvalue()


# --- command --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "csv-zip"])
def test_export_command_writes_the_same_files(tmp_path, org, calls, fmt, capsys):
    out = tmp_path / ("u.xlsx" if fmt == "xlsx" else "u.zip")
    call_command("export_pstn_usage", "--org", org.slug, "--from", "2026-11-01", "--to",
                 "2026-11-30", "--format", fmt, "-o", str(out))
    assert "exported 3 calls" in capsys.readouterr().out
    if fmt == "xlsx":
        assert openpyxl.load_workbook(out)["Usage"].max_row == 4
    else:
        assert len(list(csv.reader(io.StringIO(read_zip(out)[1].decode("utf-8-sig"))))) == 4


# --- the background export, Downloads and the file's life ---------------------------------


@pytest.fixture
def billing_admin(make_person):
    return make_person("billing_administrator", display_name="Bea Billing")


@pytest.fixture
def recent_calls(org, alice):
    now = timezone.now().replace(microsecond=0)
    return store(org, [call_record(org, person=alice, start=now - timedelta(hours=i + 1),
                                   charge=Decimal("0.50")) for i in range(4)])


def request_export(client, fmt, django_capture_on_commit_callbacks, **filters):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/reports/pstn-usage/export/", {"format": fmt, **filters})
    assert response.status_code == 302
    assert response["Location"].startswith("/reports/downloads/?started=")
    return Export.objects.latest("id")


@pytest.mark.parametrize("fmt", ["xlsx", "csv-zip"])
def test_export_runs_in_the_background_and_notifies_the_requester(
        client_for, billing_admin, recent_calls, fmt, django_capture_on_commit_callbacks):
    client = client_for(billing_admin)
    export = request_export(client, fmt, django_capture_on_commit_callbacks,
                            range="7", charged_to="credits")
    assert (export.status, export.progress, export.row_count) == (ExportStatus.DONE, 100, 4)
    assert export.filters["charged_to"] == "credits"
    assert abs(export.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    event = DomainEvent.objects.get(name="export_ready")
    assert event.payload == {
        "export_id": export.pk, "requester_person_id": billing_admin.pk,
        "expires_at": export.expires_at.astimezone(UTC).isoformat(), "format": fmt,
    }
    page = client.get("/reports/downloads/").content.decode()
    assert f"/reports/downloads/{export.token}/" in page
    response = client.get(f"/reports/downloads/{export.token}/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert zipfile.is_zipfile(io.BytesIO(body))
    if fmt == "csv-zip":
        assert "PSTN usage " in response["Content-Disposition"]
    else:
        wb = openpyxl.load_workbook(io.BytesIO(body))
        assert wb["Usage"].max_row == 5


def test_downloads_polls_while_an_export_runs(client_for, billing_admin, org):
    Export.objects.create(organization=org, requester=billing_admin, format="xlsx",
                          status=ExportStatus.RUNNING, progress=40,
                          filters=job(org).filters.as_dict(), file_name="x.xlsx")
    client = client_for(billing_admin)
    html = client.get("/reports/downloads/").content.decode()
    assert 'hx-trigger="every 2s"' in html and 'value="40"' in html
    partial = client.get("/reports/downloads/", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and b'id="downloads"' in partial.content
    Export.objects.update(status=ExportStatus.DONE)
    assert b"every 2s" not in client.get("/reports/downloads/").content


def test_a_download_is_refused_to_others(client_for, billing_admin, make_person, org,
                                         recent_calls, django_capture_on_commit_callbacks):
    export = request_export(client_for(billing_admin), "csv-zip",
                            django_capture_on_commit_callbacks)
    url = f"/reports/downloads/{export.token}/"
    reader = make_person("global_reader")
    assert client_for(reader).get(url).status_code == 403
    stranger_org = Organization.objects.create(name="Other", slug="other-z", country="US",
                                               currency="USD", billing_region="US")
    stranger = make_person("billing_administrator", organization=stranger_org)
    assert client_for(stranger).get(url).status_code == 404
    assert client_for(billing_admin).get("/reports/downloads/guess/").status_code == 404
    assert len(export.token) >= 40


def test_expired_files_are_deleted_by_the_beat_task(client_for, billing_admin, recent_calls,
                                                    django_capture_on_commit_callbacks):
    from usage.tasks import expire_exports

    export = request_export(client_for(billing_admin), "xlsx",
                            django_capture_on_commit_callbacks)
    path = exports.export_dir() / export.file_path
    assert path.is_file()
    assert expire_exports() == 0
    Export.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    url = f"/reports/downloads/{export.token}/"
    assert client_for(billing_admin).get(url).status_code == 404
    assert expire_exports() == 1
    assert not path.exists()
    assert Export.objects.get(pk=export.pk).status == ExportStatus.EXPIRED


def test_a_failing_export_is_marked_failed(org, billing_admin, monkeypatch):
    export = Export.objects.create(organization=org, requester=billing_admin, format="xlsx",
                                   filters=job(org).filters.as_dict())

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "write_export", broken)
    done = exports.export_run(export_id=export.pk)
    assert done.status == ExportStatus.FAILED and "disk full" in done.error
    assert not DomainEvent.objects.filter(name="export_ready").exists()


def test_a_finished_export_is_not_run_twice(org, billing_admin, recent_calls):
    export = Export.objects.create(organization=org, requester=billing_admin, format="csv-zip",
                                   filters=job(org).filters.as_dict())
    assert exports.export_run(export_id=export.pk).status == ExportStatus.DONE
    assert exports.export_run(export_id=export.pk) is None
    assert DomainEvent.objects.filter(name="export_ready").count() == 1


def test_export_files_stay_inside_the_export_folder(org, billing_admin):
    export = Export.objects.create(organization=org, requester=billing_admin, format="xlsx",
                                   status=ExportStatus.DONE, file_path="../../etc/passwd",
                                   filters=job(org).filters.as_dict())
    assert exports.export_file(export) is None
    assert isinstance(exports.export_dir(), Path)
