"""Issue 19 polish of the PSTN usage report, its exports and the home usage card."""
# ruff: noqa: F811 -- the report tests' fixtures are imported, then requested by name.

import csv
import io
import zipfile
from datetime import date
from decimal import Decimal

import pytest

from tests.factories import call_record
from tests.usage.test_report_views import (  # noqa: F401
    URL,
    alice,
    billing_admin,
    recent,
    some_calls,
    store,
)
from usage import exports
from usage.exports import ExportJob, export_file_name, write_csv_zip
from usage.models import Export, ExportFormat
from usage.report import ReportFilters
from usage.views.reports import DEFAULT_COLUMNS


def _headers(html):
    table = html.split('class="table table--calls"', 1)[1].split("</thead>", 1)[0]
    return table


def test_default_columns_are_few_enough_to_show_the_charge(client_for, billing_admin,
                                                          some_calls):
    assert DEFAULT_COLUMNS == ["user", "call_type", "destination", "start", "duration",
                               "charge", "charged_to"]
    html = client_for(billing_admin).get(URL).content.decode()
    head = _headers(html)
    assert "Charge</a>" in head and "Charged to" in head
    assert "Capability" not in head and "Destination number" not in head
    # The others are one tick away in "Choose columns".
    assert 'name="columns" value="capability">' in html


def test_import_pstn_calls_is_in_the_table_command_bar(client_for, billing_admin, make_person,
                                                       some_calls):
    html = client_for(billing_admin).get(URL).content.decode()
    bar = html.split('class="commandbar"', 1)[1].split("</details>", 1)[0]
    assert 'href="/reports/pstn-usage/import/" data-action="import-calls"' in bar
    reader = make_person("global_reader")
    assert 'data-action="import-calls"' not in client_for(reader).get(URL).content.decode()


def test_top_spenders_link_filters_the_report(client_for, billing_admin, some_calls):
    html = client_for(billing_admin).get(URL).content.decode()
    spenders = html.split("Top spenders", 1)[1].split("</table>", 1)[0]
    assert 'href="/reports/pstn-usage/?range=28&amp;user=alice%40contoso.example"' in spenders


def test_the_page_says_exports_hold_every_column(client_for, billing_admin, some_calls):
    html = client_for(billing_admin).get(URL).content.decode()
    assert "Exports contain every column, not only those shown." in html


def test_export_banner_turns_from_started_to_ready_with_a_link(client_for, billing_admin,
                                                              some_calls, org, settings,
                                                              tmp_path):
    settings.EXPORT_DIR = str(tmp_path)
    client = client_for(billing_admin)
    response = client.post("/reports/pstn-usage/export/", {"format": "csv-zip",
                                                           "range": "28"})
    export = Export.objects.get(organization=org)
    assert response["Location"] == f"/reports/downloads/?started={export.pk}#export-{export.pk}"
    Export.objects.filter(pk=export.pk).update(status="queued")
    page = client.get(f"/reports/downloads/?started={export.pk}").content.decode()
    assert 'data-export-banner="started"' in page and 'data-export-banner="ready"' not in page
    assert f'hx-get="/reports/downloads/?started={export.pk}"' in page
    exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    page = client.get(f"/reports/downloads/?started={export.pk}",
                      HTTP_HX_REQUEST="true").content.decode()
    assert 'data-export-banner="ready"' in page and 'data-export-banner="started"' not in page
    assert f'href="/reports/downloads/{export.token}/" download>Download</a>' in page


def test_export_file_names_say_what_is_inside(org):
    filters = ReportFilters(start=date(2026, 11, 3), end=date(2026, 11, 30), range="custom")
    zipped = Export(organization=org, format=ExportFormat.CSV_ZIP, pk=7)
    workbook = Export(organization=org, format=ExportFormat.XLSX, pk=8)
    assert export_file_name(zipped, filters) == "PSTN usage 2026-11-03 to 2026-11-30.zip"
    assert export_file_name(workbook, filters) == "PSTN usage 2026-11-03 to 2026-11-30.xlsx"


def test_the_csv_in_the_zip_starts_with_a_bom_and_keeps_accents(org, alice, tmp_path):
    store(org, [call_record(org, person=alice, start=recent(2), charge=Decimal("1.00"),
                            destination_name="Réunion")])
    from django.utils import timezone

    today = timezone.now().date()
    job = ExportJob(org, ReportFilters(start=today.replace(day=1) if today.day > 1 else today,
                                       end=today, range="custom"), timezone.now(), 1, "x")
    path = tmp_path / "out.zip"
    write_csv_zip(path, job)
    with zipfile.ZipFile(path) as z:
        member = next(n for n in z.namelist() if n.endswith(".csv"))
        raw = z.read(member)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0][0] == exports.EXPORT_HEADER[0]


@pytest.mark.django_db
def test_home_usage_card_has_a_spend_sparkline(client_for, billing_admin, some_calls):
    html = client_for(billing_admin).get("/").content.decode()
    assert "data-sparkline" in html and "<polyline" in html
    assert 'class="card__actions"><a class="btn"' in html
