"""Spreadsheet formula injection: text that starts like a formula (=, +, -, @, or a tab or
before one) is written to the .xlsx as text, unchanged, on every sheet."""

import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest

from tests.factories import PersonFactory, call_record
from usage import exports, report
from usage.models import CallRecord
from usage.rollups import rollups_add_calls

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3",
            "@SUM(1,2)", "\t=1+1", "=1+1"]
DAY = date(2026, 11, 2)


@pytest.fixture
def workbook(tmp_path, org):
    records = []
    for i, text in enumerate(FORMULAS):
        person = PersonFactory(organization=org, display_name=text, upn=f"p{i}@x.example")
        records.append(call_record(
            org, person=person, start=datetime(2026, 11, 2, 9, i, tzinfo=UTC),
            user_display_name=text, destination_name=text, call_id=text, conference_id=text,
            charge=Decimal("0.10")))
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    filters = report.ReportFilters(start=DAY - timedelta(days=3), end=DAY + timedelta(days=3),
                                   range="custom")
    path = tmp_path / "usage.xlsx"
    exports.write_xlsx(path, exports.ExportJob(org, filters, datetime(2026, 11, 10, tzinfo=UTC),
                                               1, "test"))
    return path


def test_formula_like_names_are_written_as_unchanged_text(workbook):
    wb = openpyxl.load_workbook(workbook)
    seen = {}
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if cell.value in FORMULAS:
                    assert cell.data_type == "s", (sheet.title, cell.coordinate)
                    seen.setdefault(cell.value, set()).add(sheet.title)
    # Every formula-looking name is there, as itself, in the usage rows.
    assert set(seen) == set(FORMULAS) and all("Usage" in s for s in seen.values()), seen
    with zipfile.ZipFile(workbook) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets and not any("<f>" in archive.read(n).decode() for n in sheets)
