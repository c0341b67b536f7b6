"""Exports of an empty range are valid files that say so, and an export that fails or is
killed leaves no file behind: not its `.part`, not XlsxWriter's temporary files (the
expiry task sweeps what a killed process could not remove)."""

import csv
import io
import json
import os
import signal
import tempfile
import time
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
import xlsxwriter.packager
from django.core.management import call_command
from django.utils import timezone, translation

from tests.factories import PersonFactory, call_record
from usage import exports, pg, report
from usage.models import CallRecord, Export, ExportStatus
from usage.rollups import rollups_add_calls

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 2)
FORMATS = ["xlsx", "csv-zip"]


@pytest.fixture(autouse=True)
def system_tmp(tmp_path, monkeypatch):
    """The system temp folder, watched: nothing may be left there either."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == []


@pytest.fixture
def export_dir(tmp_path, settings):
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings.EXPORT_DIR


@pytest.fixture
def calls(org):
    alice = PersonFactory(organization=org, display_name="Alice", upn="alice@x.example")
    records = [call_record(org, person=alice, start=datetime(2026, 11, 2, 9, i, tzinfo=UTC),
                           charge=Decimal("0.25")) for i in range(3)]
    CallRecord.objects.bulk_create(records)
    rollups_add_calls(organization=org, records=records)
    return records


def job(org, start=DAY, end=DAY, **filters):
    f = report.ReportFilters(start=start, end=end, range="custom", **filters)
    return exports.ExportJob(org, f, datetime(2026, 11, 10, tzinfo=UTC), 7, "test")


def cells(sheet) -> list:
    return [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]


def assert_empty_workbook(path, message="No calls in this range."):
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Usage", "Parameters"]
    summary = cells(wb["Summary"])
    assert message in summary
    assert summary[summary.index("Calls") + 1] == 0
    assert wb["Usage"].max_row == 1 and wb["Usage"]["A1"].value == "UsageId"
    params = dict(wb["Parameters"].iter_rows(values_only=True))
    assert params["Rows"] == 0


def assert_empty_zip(path):
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        names = z.namelist()
        member = next(n for n in names if n.endswith(".csv"))
        rows = list(csv.reader(io.StringIO(z.read(member).decode("utf-8-sig"), newline="")))
        assert len(rows) == 1 and rows[0][0] == "UsageId"
        assert json.loads(z.read("parameters.json"))["rows"] == 0


def only_the_file(folder, name):
    assert sorted(p.name for p in folder.iterdir()) == [name]


# --- empty ranges -----------------------------------------------------------------------


@pytest.mark.parametrize("filters", [
    {"start": DAY - timedelta(days=40), "end": DAY - timedelta(days=30)},  # no calls then
    {"user": "nobody-matches-this"},  # calls in range, none of the person's
    {"call_type": "conf_out"},
], ids=["no-calls", "no-such-user", "filtered-out"])
def test_an_empty_range_makes_a_workbook_that_says_so(tmp_path, org, calls, filters):
    path = tmp_path / "empty.xlsx"
    assert exports.write_xlsx(path, job(org, **filters)) == 0
    assert_empty_workbook(path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "system-tmp") == [
        "empty.xlsx"]


def test_the_empty_workbook_says_so_in_the_language_of_the_export(tmp_path, org):
    with translation.override("fr"):
        exports.write_xlsx(tmp_path / "vide.xlsx", job(org))
        message = translation.gettext("No calls in this range.")
    assert message != "No calls in this range."
    assert_empty_workbook(tmp_path / "vide.xlsx", message)


def test_an_empty_range_makes_a_valid_csv_zip(tmp_path, org, calls):
    path = tmp_path / "Calls.Export.7.zip"
    assert exports.write_csv_zip(path, job(org, user="nobody")) == 0
    assert_empty_zip(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_command_exports_an_empty_range(tmp_path, org, fmt):
    out = tmp_path / "out" / f"empty.{fmt}"
    stdout = io.StringIO()
    call_command("export_pstn_usage", "--org", org.slug, "--from", "2026-01-01", "--to",
                 "2026-01-31", "--format", fmt, "-o", str(out), stdout=stdout)
    assert stdout.getvalue().strip() == f"exported 0 calls to {out}"
    assert_empty_workbook(out) if fmt == "xlsx" else assert_empty_zip(out)
    only_the_file(out.parent, out.name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_page_exports_an_empty_range(client_for, make_person, org, export_dir, fmt,
                                         django_capture_on_commit_callbacks):
    client = client_for(make_person("billing_administrator"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/reports/pstn-usage/export/", {"format": fmt, "range": "7"})
    assert response.status_code == 302
    export = Export.objects.get()
    assert (export.status, export.row_count, export.error) == (ExportStatus.DONE, 0, "")
    download = client.get(f"/reports/downloads/{export.token}/")
    body = io.BytesIO(b"".join(download.streaming_content))
    assert_empty_workbook(body) if fmt == "xlsx" else assert_empty_zip(body)
    only_the_file(export_dir / str(org.pk), export.file_path.split("/")[-1])


# --- failures leave nothing ---------------------------------------------------------------


class Boom(Exception):
    pass


def fail_midway(monkeypatch, after: int, exc: BaseException):
    """Rows stop with `exc` after `after` of them (the Python rows of both formats, and
    PostgreSQL's COPY for the zip)."""
    real = exports.stream_rows

    def rows(job):
        for n, row in enumerate(real(job)):
            if n == after:
                raise exc
            yield row

    def copy(member, calls, **kwargs):
        member.write(b"a,partial,row\r\n" * after)
        raise exc

    monkeypatch.setattr(exports, "stream_rows", rows)
    monkeypatch.setattr(pg, "export_csv_copy", copy)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("exc", [Boom("database gone"), KeyboardInterrupt()],
                         ids=["error", "interrupt"])
def test_a_failure_while_reading_rows_leaves_no_file(tmp_path, org, calls, monkeypatch, fmt,
                                                     exc):
    fail_midway(monkeypatch, 2, exc)
    folder = tmp_path / "out"
    with pytest.raises(type(exc)):
        exports.write_export(folder / "usage.file", job(org), fmt)
    assert list(folder.iterdir()) == []


def test_a_failure_while_xlsxwriter_packages_leaves_none_of_its_temporary_files(
        tmp_path, org, calls, monkeypatch):
    """By then XlsxWriter has written its row files and some of the parts it zips."""
    def broken(self):
        assert any(os.scandir(self.tmpdir))  # its temporary files exist at this point
        raise OSError("disk full")

    monkeypatch.setattr(xlsxwriter.packager.Packager, "_write_core_file", broken)
    folder = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        exports.write_xlsx(folder / "usage.xlsx", job(org))
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_background_export_leaves_no_file(org, calls, export_dir, monkeypatch, fmt):
    person = PersonFactory(organization=org)
    export = Export.objects.create(organization=org, requester=person, format=fmt,
                                   filters=job(org).filters.as_dict())
    fail_midway(monkeypatch, 1, Boom("connection lost"))
    done = exports.export_run(export_id=export.pk)
    assert done.status == ExportStatus.FAILED and "connection lost" in done.error
    assert list((export_dir / str(org.pk)).iterdir()) == []


def test_the_command_stopped_by_sigterm_leaves_no_file(tmp_path, org, calls, monkeypatch):
    real = exports.stream_rows

    def rows(job):
        for n, row in enumerate(real(job)):
            if n == 1:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler runs before this ends
            yield row

    class Unhandled(Exception):
        pass

    def guard(signum, frame):  # keeps the test run alive if the command installs nothing
        raise Unhandled

    monkeypatch.setattr(exports, "stream_rows", rows)
    out = tmp_path / "out" / "usage.xlsx"
    before = signal.signal(signal.SIGTERM, guard)
    try:
        with pytest.raises(SystemExit) as stopped:
            call_command("export_pstn_usage", "--org", org.slug, "--from", "2026-11-01",
                         "--to", "2026-11-03", "--format", "xlsx", "-o", str(out),
                         stdout=io.StringIO())
        assert signal.getsignal(signal.SIGTERM) is guard
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert list(out.parent.iterdir()) == []


def test_a_redelivered_export_removes_what_the_killed_run_left(org, calls, export_dir):
    person = PersonFactory(organization=org)
    export = Export.objects.create(organization=org, requester=person, format="xlsx",
                                   filters=job(org).filters.as_dict())
    folder = export_dir / str(org.pk)
    scratch = folder / f"{export.pk}-0123456789abcdef.xlsx.k1ll3d_x.tmp"
    scratch.mkdir(parents=True)
    (scratch / "tmpabcd1234").write_text("rows")
    (folder / f"{export.pk}-0123456789abcdef.xlsx.part").write_bytes(b"PK")
    done = exports.export_run(export_id=export.pk)
    assert done.status == ExportStatus.DONE
    only_the_file(folder, done.file_path.split("/")[-1])


# --- the expiry task sweeps what killed processes left ------------------------------------


def _age(path, days):
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))
    return path


def test_the_expiry_task_sweeps_leftovers_of_no_live_export(org, export_dir):
    from usage.tasks import expire_exports

    person = PersonFactory(organization=org)
    filters = job(org).filters.as_dict()
    failed = Export.objects.create(organization=org, requester=person, format="xlsx",
                                   status=ExportStatus.FAILED, filters=filters)
    running = Export.objects.create(organization=org, requester=person, format="xlsx",
                                    status=ExportStatus.RUNNING, filters=filters,
                                    started_at=timezone.now())
    done = Export.objects.create(organization=org, requester=person, format="csv-zip",
                                 status=ExportStatus.DONE, filters=filters,
                                 expires_at=timezone.now() + timedelta(days=3))
    folder = export_dir / str(org.pk)
    folder.mkdir(parents=True)
    hexa = "0123456789abcdef"

    def old(name, *, directory=False):
        path = folder / name
        if directory:
            path.mkdir()
            (path / "tmpzzzz0000").write_text("row data")
        else:
            path.write_bytes(b"x")
        return _age(path, 2)

    gone = [
        old(f"{failed.pk}-{hexa}.xlsx.part"),
        old(f"{failed.pk}-{hexa}.xlsx.abc_1234.tmp", directory=True),
        old(f"{failed.pk}-{hexa}.xlsx"),  # finished on disk, but no export points to it
        old("tmpk9_x2bq7"),  # XlsxWriter's own file, written straight into the folder
        old("424242-fedcba9876543210.zip.part"),  # an export deleted since
    ]
    done_file = old(f"{done.pk}-{hexa}.zip")
    Export.objects.filter(pk=done.pk).update(file_path=f"{org.pk}/{done_file.name}")
    kept = [
        old(f"{running.pk}-{hexa}.xlsx.part"),  # its export still runs
        old(f"{running.pk}-{hexa}.xlsx.qqq_9999.tmp", directory=True),
        done_file,  # a finished export's file, until it expires
        folder / f"{failed.pk}-{hexa}.zip.part",  # less than a day old
        old("notes.txt"),  # not a name exports make
    ]
    kept[3].write_bytes(b"fresh")
    outside = export_dir / "tmpabcdefgh"  # EXPORT_DIR's own entries are not ours to sweep
    outside.write_text("someone else's")
    _age(outside, 3)

    assert expire_exports() == 0
    assert [p for p in gone if p.exists()] == []
    assert [p for p in kept if not p.exists()] == [] and outside.exists()
